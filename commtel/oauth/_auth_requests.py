"""Bearer auth for requests: the requests driver of :func:`~commtel.oauth._auth.bearer_flow`."""

from __future__ import annotations

from functools import partial
from typing import Any

from .._optional import requires
from ._auth import BearerFlow, _resolve, bearer_flow
from ._client import OAuthClient


with requires("requests"):
    import requests
    import requests.auth


__all__ = ["OAuthRequestsAuth"]


class OAuthRequestsAuth(requests.auth.AuthBase):
    """``requests`` auth sending an :class:`OAuthClient`'s bearer token, renewing it on 401.

    A streamed (file-like) body cannot be replayed; the 401 is then returned as is.

    .. versionadded:: 0.1.0
    """

    def __init__(self, client: OAuthClient) -> None:
        self._client = client

    def __repr__(self) -> str:
        return f"OAuthRequestsAuth({self._client!r})"

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        flow = bearer_flow()
        send = _resolve(flow, next(flow), self._client)
        request.headers["Authorization"] = send.token.authorization
        request.register_hook("response", partial(self._on_response, flow))  # type: ignore[no-untyped-call]
        return request

    def _on_response(self, flow: BearerFlow, response: requests.Response, **kwargs: Any) -> requests.Response:
        replayable = not hasattr(response.request.body, "read")
        try:
            step = flow.send(response.status_code)
        except StopIteration:
            return response
        if not replayable:
            flow.close()
            return response
        send = _resolve(flow, step, self._client)
        flow.close()
        _ = response.content  # release the connection for the replay
        response.close()
        prepared = response.request.copy()
        prepared.headers["Authorization"] = send.token.authorization
        replay: requests.Response = response.connection.send(prepared, **kwargs)
        replay.history.append(response)
        replay.request = prepared
        return replay
