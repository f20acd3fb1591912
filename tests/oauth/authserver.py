"""A real OAuth 2 authorization server for the tests, built on authlib's server side.

authlib's framework-agnostic ``AuthorizationServer`` with the authorization-code
grant (+ PKCE S256 via ``CodeChallenge``), the refresh-token grant with
rotation, the client-credentials grant and the RFC 7009 revocation endpoint,
served as a small WSGI app by a threading ``wsgiref`` server on 127.0.0.1.

It counts token requests per grant type server-side and remembers every
secret it saw or issued (client secrets, codes, verifiers, tokens), so the tests
can look for them in spans, metrics and logs.
"""

from __future__ import annotations

import json
import threading
import time

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from http.client import responses
from socketserver import ThreadingMixIn
from typing import Any
from urllib.parse import parse_qsl
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from authlib.common.security import generate_token
from authlib.oauth2.rfc6749 import AuthorizationServer, OAuth2Payload, OAuth2Request, grants
from authlib.oauth2.rfc6749.errors import OAuth2Error
from authlib.oauth2.rfc6749.models import AuthorizationCodeMixin, ClientMixin, TokenMixin
from authlib.oauth2.rfc6750 import BearerTokenGenerator
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7636 import CodeChallenge


REDIRECT_URI = "http://127.0.0.1/callback"
USER = "alice"


@dataclass
class Client(ClientMixin):
    client_id: str
    client_secret: str | None
    auth_method: str
    grant_types: tuple[str, ...]
    scope: str = "read write"
    redirect_uris: tuple[str, ...] = (REDIRECT_URI,)

    def get_client_id(self):
        return self.client_id

    def get_default_redirect_uri(self):
        return self.redirect_uris[0]

    def get_allowed_scope(self, scope):
        if not scope:
            return self.scope
        allowed = set(self.scope.split())
        return " ".join(s for s in scope.split() if s in allowed)

    def check_redirect_uri(self, redirect_uri):
        return redirect_uri in self.redirect_uris

    def check_client_secret(self, client_secret):
        return self.client_secret is not None and client_secret == self.client_secret

    def check_endpoint_auth_method(self, method, endpoint):
        return method == self.auth_method

    def check_response_type(self, response_type):
        return response_type == "code"

    def check_grant_type(self, grant_type):
        return grant_type in self.grant_types


@dataclass
class AuthCode(AuthorizationCodeMixin):
    code: str
    client_id: str
    redirect_uri: str | None
    scope: str
    user: str
    code_challenge: str | None
    code_challenge_method: str | None

    def get_redirect_uri(self):
        return self.redirect_uri

    def get_scope(self):
        return self.scope


@dataclass
class IssuedToken(TokenMixin):
    client: Client
    user: str | None
    access_token: str
    refresh_token: str | None
    scope: str
    expires_in: int
    issued_at: float = field(default_factory=time.time)
    access_revoked: bool = False
    refresh_revoked: bool = False

    def check_client(self, client):
        return client.client_id == self.client.client_id

    def get_scope(self):
        return self.scope

    def get_expires_in(self):
        return self.expires_in

    def is_expired(self):
        return time.time() >= self.issued_at + self.expires_in

    def is_revoked(self):
        return self.access_revoked

    def get_user(self):
        return self.user

    def get_client(self):
        return self.client


class _Payload(OAuth2Payload):
    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self._datalist: defaultdict[str, list[str]] = defaultdict(list)
        for key, value in pairs:
            self._datalist[key].append(value)
        self._data = {key: values[0] for key, values in self._datalist.items()}

    @property
    def data(self):
        return self._data

    @property
    def datalist(self):
        return self._datalist


class _Request(OAuth2Request):
    def __init__(self, environ: dict[str, Any]) -> None:
        query = parse_qsl(environ.get("QUERY_STRING", ""))
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length).decode() if length else ""
        form = parse_qsl(body)
        headers = {k[5:].replace("_", "-").title(): v for k, v in environ.items() if k.startswith("HTTP_")}
        if environ.get("CONTENT_TYPE"):
            headers["Content-Type"] = environ["CONTENT_TYPE"]
        # authlib refuses http:// URIs unless AUTHLIB_INSECURE_TRANSPORT is set; the URI is only informative.
        super().__init__(
            environ["REQUEST_METHOD"], "https://auth.test" + environ.get("PATH_INFO", "/"), headers=headers
        )
        self._args = dict(query)
        self._form = dict(form)
        self.payload = _Payload(query + form)

    @property
    def args(self):
        return self._args

    @property
    def form(self):
        return self._form


class AuthServer:
    """The test authorization server; ``start()`` it, point clients at ``url``."""

    def __init__(self, *, access_ttl_s: int = 3600, token_delay_s: float = 0.0) -> None:
        self.access_ttl_s = access_ttl_s
        self.token_delay_s = token_delay_s
        self.clients: dict[str, Client] = {}
        self.codes: dict[str, AuthCode] = {}
        self.tokens: list[IssuedToken] = []
        self.counts: Counter[str] = Counter()
        self.secrets: set[str] = set()
        self.lock = threading.Lock()
        self.oauth = self._build()
        self._httpd = make_server(
            "127.0.0.1", 0, self.wsgi, server_class=_ThreadingWSGIServer, handler_class=_QuietHandler
        )
        self._thread: threading.Thread | None = None

    # -- set-up ------------------------------------------------------------------------

    def _build(self) -> AuthorizationServer:
        server = self
        oauth = _Server(self)

        class CodeGrant(grants.AuthorizationCodeGrant):
            TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]

            def save_authorization_code(self, code, request):
                with server.lock:
                    server.secrets.add(code)
                    server.codes[code] = AuthCode(
                        code,
                        request.client.client_id,
                        request.payload.redirect_uri,
                        request.scope,
                        request.user,
                        request.payload.data.get("code_challenge"),
                        request.payload.data.get("code_challenge_method"),
                    )

            def query_authorization_code(self, code, client):
                item = server.codes.get(code)
                return item if item and item.client_id == client.client_id else None

            def delete_authorization_code(self, authorization_code):
                server.codes.pop(authorization_code.code, None)

            def authenticate_user(self, authorization_code):
                return authorization_code.user

        class RefreshGrant(grants.RefreshTokenGrant):
            TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]
            INCLUDE_NEW_REFRESH_TOKEN = True  # rotation

            def authenticate_refresh_token(self, refresh_token):
                for token in server.tokens:
                    if token.refresh_token == refresh_token and not token.refresh_revoked:
                        return token
                return None

            def authenticate_user(self, refresh_token):
                return refresh_token.user or "client"

            def revoke_old_credential(self, refresh_token):
                refresh_token.refresh_revoked = True

        class CredentialsGrant(grants.ClientCredentialsGrant):
            TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]

        class Revocation(RevocationEndpoint):
            CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]

            def query_token(self, token_string, token_type_hint):
                for token in server.tokens:
                    if token_string in (token.access_token, token.refresh_token):
                        return token
                return None

            def revoke_token(self, token, request):
                token.access_revoked = token.refresh_revoked = True

        oauth.register_grant(CodeGrant, [CodeChallenge(required=True)])
        oauth.register_grant(RefreshGrant)
        oauth.register_grant(CredentialsGrant)
        oauth.register_endpoint(Revocation)
        oauth.register_token_generator(
            "default",
            BearerTokenGenerator(
                lambda **_: generate_token(42),
                lambda **_: generate_token(48),
                lambda client, grant_type: self.access_ttl_s,
            ),
        )
        return oauth

    def register_client(
        self,
        client_id: str,
        client_secret: str | None = None,
        *,
        auth_method: str | None = None,
        grant_types: tuple[str, ...] = ("authorization_code", "refresh_token", "client_credentials"),
    ) -> Client:
        """Register a client (public when *client_secret* is None)."""
        if client_secret:
            self.secrets.add(client_secret)
        method = auth_method or ("client_secret_basic" if client_secret else "none")
        client = Client(client_id, client_secret, method, grant_types)
        self.clients[client_id] = client
        return client

    # -- serving -----------------------------------------------------------------------

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> AuthServer:
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.02,), name="authserver", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def wsgi(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        request = _Request(environ)
        path = environ.get("PATH_INFO", "")
        if path == "/authorize":
            status, body, headers = self._authorize(request)
        elif path == "/token":
            with self.lock:
                self.counts[request.form.get("grant_type", "?")] += 1
                verifier = request.form.get("code_verifier")
                if verifier:
                    self.secrets.add(verifier)
            if self.token_delay_s:
                time.sleep(self.token_delay_s)  # a slow token endpoint, when a test asks for one
            with self.lock:
                status, body, headers = self.oauth.create_token_response(request)
        elif path == "/revoke":
            with self.lock:
                self.counts["revocation"] += 1
                status, body, headers = self.oauth.create_endpoint_response("revocation", request)
        else:
            status, body, headers = 404, {"error": "not_found"}, []
        payload = body if isinstance(body, str) else json.dumps(body)
        start_response(f"{status} {responses.get(status, '')}", [*headers, ("Content-Length", str(len(payload)))])
        return [payload.encode()]

    def _authorize(self, request: _Request) -> tuple[int, Any, list[tuple[str, str]]]:
        """Alice approves every request at once (no consent page)."""
        try:
            grant = self.oauth.get_consent_grant(request, end_user=USER)
        except OAuth2Error as error:
            return error()
        return self.oauth.create_authorization_response(request, grant_user=USER, grant=grant)

    def issued(self) -> list[IssuedToken]:
        with self.lock:
            return list(self.tokens)

    def expire_all(self) -> None:
        """Make every issued access token expired (server side)."""
        with self.lock:
            for token in self.tokens:
                token.issued_at -= token.expires_in + 1


class _Server(AuthorizationServer):
    def __init__(self, owner: AuthServer) -> None:
        super().__init__(scopes_supported=["read", "write"])
        self.owner = owner

    def query_client(self, client_id):
        return self.owner.clients.get(client_id)

    def save_token(self, token, request):
        owner = self.owner
        for name in ("access_token", "refresh_token"):
            if token.get(name):
                owner.secrets.add(token[name])
        owner.tokens.append(
            IssuedToken(
                request.client,
                request.user,
                token["access_token"],
                token.get("refresh_token"),
                token.get("scope", ""),
                token.get("expires_in", 0),
            )
        )

    def create_oauth2_request(self, request):
        return request

    def create_json_request(self, request):
        raise NotImplementedError

    def handle_response(self, status, body, headers):
        return status, body, list(headers)

    def send_signal(self, name, *args, **kwargs):
        pass


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):  # noqa: A002
        pass


def approve(authorization_url: str) -> str:
    """Play the user's browser: open the authorization URL, return the callback URL it redirects to.

    Uses http.client (which logs nothing), so the code in the redirect never reaches a log.
    """
    from http.client import HTTPConnection
    from urllib.parse import urlsplit

    parts = urlsplit(authorization_url)
    connection = HTTPConnection(parts.hostname, parts.port, timeout=5)
    try:
        connection.request("GET", f"{parts.path}?{parts.query}")
        response = connection.getresponse()
        response.read()
        location = response.getheader("Location")
    finally:
        connection.close()
    assert response.status == 302 and location, f"authorization failed with {response.status}"
    return location
