"""Per-host/platform policies from code, TOML and the environment, validated with named fields."""

from __future__ import annotations

import pytest

from hypothesis import given
from hypothesis import strategies as st

from commtel import CircuitBreaker, ConfigurationError, RetryConfig
from commtel.concurrency import AdaptiveLimiter, Bulkhead
from commtel.instrumentation import HostPolicies, HostPolicy, redact_url


TOML = """
[default]
timeout_s = 5
retry = { max_attempts = 4, base_delay = 0.1 }
breaker = { failure_threshold = 3 }

[platforms.twitter]
rate_limit = { per_minute = 300 }

[hosts."api.twitter.com"]
platform = "twitter"

[hosts."upload.twitter.com"]
platform = "twitter"
timeout_s = 60

[hosts."*.example.com"]
retry = false
"""


def test_toml_file_layers_host_over_platform_over_default(tmp_path) -> None:
    """A host inherits its platform's and the default's fields, overriding its own."""
    path = tmp_path / "policies.toml"
    path.write_text(TOML)
    policies = HostPolicies.from_toml(path)
    api = policies.for_host("api.twitter.com")
    upload = policies.for_host("upload.twitter.com")
    assert api.platform == "twitter"
    assert api.policy.timeout_s == 5 and upload.policy.timeout_s == 60
    assert api.policy.retry == RetryConfig(max_attempts=4, base_delay=0.1)
    assert api.limiter is upload.limiter is not None  # defined on the platform: shared by its hosts
    assert api.breaker is not upload.breaker  # from the default: one per host
    assert policies.for_host("cdn.example.com").guard("HTTP GET", http_method="GET").retry is None
    assert policies.for_host("other.org").platform == "other"  # unconfigured hosts share one label
    assert policies.for_host("cdn.example.com").platform == "*.example.com"  # a pattern's key, never the host


def test_environment_inline_toml_overrides_the_file(tmp_path) -> None:
    """$COMMTEL_POLICIES is applied over $COMMTEL_POLICIES_FILE."""
    path = tmp_path / "p.toml"
    path.write_text(TOML)
    env = {"COMMTEL_POLICIES_FILE": str(path), "COMMTEL_POLICIES": "default = { timeout_s = 1 }"}
    policies = HostPolicies.from_env(env)
    assert policies.for_host("a.org").policy.timeout_s == 1
    assert policies.for_host("a.org").policy.retry.max_attempts == 4


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"default": {"retry": {"max_attempts": 0}}}, "default.retry"),
        ({"default": {"retry": {"bogus": 1}}}, "default.retry"),
        ({"hosts": {"x.org": {"timeout_s": "soon"}}}, 'hosts."x.org".timeout_s'),
        ({"hosts": {"x.org": {"timeout": 3}}}, 'hosts."x.org"'),
        ({"platforms": {"p": {"breaker": {"failure_treshold": 3}}}}, 'platforms."p".breaker'),
        ({"platforms": {"p": {"rate_limit": {"rate": -1}}}}, 'platforms."p".rate_limit'),
        ({"platforms": {"p": {"rate_limit": {}}}}, 'platforms."p".rate_limit'),
        ({"defaults": {}}, "defaults"),
        ({"platforms": {"p": {"adaptive": {"max_limit": 0}}}}, 'platforms."p".adaptive'),
        ({"platforms": {"p": {"adaptive": True}}}, 'platforms."p".adaptive'),
        ({"hosts": {"x.org": {"bulkhead": {"max_concurent": 4}}}}, 'hosts."x.org".bulkhead'),
    ],
)
def test_invalid_values_name_the_field(data, field) -> None:
    """Every configuration error says which field is wrong."""
    with pytest.raises(ConfigurationError) as info:
        HostPolicies.from_mapping(data)
    assert field in str(info.value)


def test_bad_toml_is_a_configuration_error() -> None:
    """Unparsable TOML text is reported as a ConfigurationError naming its source."""
    with pytest.raises(ConfigurationError, match="COMMTEL_POLICIES"):
        HostPolicies.from_env({"COMMTEL_POLICIES": "default = {"})


def test_objects_given_in_code_are_shared() -> None:
    """A breaker instance in a code policy is used as is by every host it applies to."""
    breaker = CircuitBreaker("shared")
    policies = HostPolicies(default=HostPolicy(breaker=breaker, rate_limit=None))
    assert policies.for_host("a.org").breaker is breaker is policies.for_host("b.org").breaker


def test_concurrency_limits_come_from_policies_and_live_where_configured() -> None:
    """adaptive/bulkhead tables give a scope its concurrency limit, shared like breakers; both at once is an error."""
    policies = HostPolicies.from_mapping(
        {
            "platforms": {"search": {"adaptive": {"max_limit": 50}}},
            "hosts": {
                "a.search.org": {"platform": "search"},
                "b.search.org": {"platform": "search"},
                "reports.org": {"bulkhead": {"max_concurrent": 4, "max_wait_s": 0.5}},
                "both.org": {"platform": "search", "bulkhead": {"max_concurrent": 4}},
                "fixed.search.org": {"platform": "search", "adaptive": False, "bulkhead": {"max_concurrent": 2}},
            },
        }
    )
    a, b = policies.for_host("a.search.org"), policies.for_host("b.search.org")
    assert isinstance(a.concurrency, AdaptiveLimiter) and a.concurrency is b.concurrency
    assert a.concurrency.name == "search" and a.guard("HTTP GET").concurrency is a.concurrency
    reports = policies.for_host("reports.org").concurrency
    assert isinstance(reports, Bulkhead) and (reports.max_concurrent, reports.max_wait_s) == (4, 0.5)
    fixed = policies.for_host("fixed.search.org").concurrency
    assert isinstance(fixed, Bulkhead) and fixed.max_concurrent == 2
    assert policies.for_host("other.org").concurrency is None  # none by default
    with pytest.raises(ConfigurationError, match="bulkhead and adaptive are both set"):
        policies.for_host("both.org")
    shared = Bulkhead("shared-in-code", max_concurrent=3)
    in_code = HostPolicies(default=HostPolicy(bulkhead=shared))
    assert in_code.for_host("x.org").concurrency is shared is in_code.for_host("y.org").concurrency


def test_retry_methods_default_to_idempotent_ones() -> None:
    """GET is retried, POST is not, unless retry_methods says so."""
    scope = HostPolicies(base="recommended").for_host("a.org")
    assert scope.guard("HTTP GET", http_method="GET").retry is not None
    assert scope.guard("HTTP POST", http_method="POST").retry is None
    everything = HostPolicies(base="recommended", default=HostPolicy(retry_methods="*")).for_host("a.org")
    assert everything.guard("HTTP POST", http_method="POST").retry is not None


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["page", "q", "token", "api_key", "sig", "password"]),
            st.text("abcdef0123456789", min_size=1, max_size=8),
        ),
        max_size=5,
    )
)
def test_redacted_urls_keep_everything_but_secrets(pairs) -> None:
    """redact_url keeps ordinary query values and never leaves a secret one."""
    query = "&".join(f"{k}={v}" for k, v in pairs)
    url = redact_url(f"https://user:pw@api.example.com/v1/items?{query}")
    assert url.startswith("https://REDACTED:REDACTED@api.example.com/v1/items")
    for key, value in pairs:
        if key in {"page", "q"}:
            assert f"{key}={value}" in url
        else:
            assert f"{key}=REDACTED" in url


def test_nothing_is_guarded_unless_configured() -> None:
    """The base "observe": no retry, breaker, limiter or timeout; "recommended" is the one opt-in."""
    for scope in (HostPolicies().for_host("a.org"), HostPolicies.from_env({}).for_host("a.org")):
        guard = scope.guard("HTTP GET", http_method="GET")
        assert (guard.retry, guard.breaker, guard.limiter, scope.policy.timeout_s) == (None, None, None, None)
        assert not scope.send_correlation
    opted_in = HostPolicies.from_env({"COMMTEL_POLICIES": 'base = "recommended"'}).for_host("a.org")
    guard = opted_in.guard("HTTP GET", http_method="GET")
    assert guard.retry is not None and guard.retry.config == RetryConfig()
    assert guard.breaker is not None and guard.limiter is None
    with pytest.raises(ConfigurationError, match="base must be one of"):
        HostPolicies.from_mapping({"base": "everything"})
    with pytest.raises(ConfigurationError, match="send_correlation must be true or false"):
        HostPolicies.from_mapping({"hosts": {"a.org": {"send_correlation": "yes"}}})
    with pytest.raises(ConfigurationError, match="max_host_scopes"):
        HostPolicies(max_host_scopes=0)


def test_unconfigured_host_scopes_are_a_bounded_lru() -> None:
    """Hosts without an exact entry keep the max_host_scopes most recently used scopes; configured ones stay."""
    policies = HostPolicies(base="recommended", max_host_scopes=3, hosts={"api.mine.org": HostPolicy(platform="mine")})
    pinned = policies.for_host("api.mine.org")
    first = policies.for_host("a.org")
    for host in ("b.org", "c.org", "a.org", "d.org"):  # a.org was used again: b.org is the oldest
        policies.for_host(host)
    assert policies.for_host("a.org") is first
    assert list(policies._recent) == ["c.org", "d.org", "a.org"]  # b.org was evicted
    assert policies.for_host("b.org").breaker is not None  # made again, with a fresh breaker
    assert policies.for_host("api.mine.org") is pinned
    assert {policies.for_host(h).breaker.name for h in ("a.org", "b.org")} == {"other"}
    assert len(policies._recent) == 3


def test_unconfigured_hosts_without_state_share_one_scope() -> None:
    """With no breaker or limiter per host (the default), every unconfigured host shares one scope: nothing per host."""
    policies = HostPolicies(hosts={"api.mine.org": HostPolicy(platform="mine"), "*.cdn.org": HostPolicy(retry=False)})
    shared = policies.for_host("a.org")
    assert all(policies.for_host(f"h{n}.org") is shared for n in range(100))
    assert not policies._recent and shared.platform == "other"
    assert policies.for_host("api.mine.org").platform == "mine"
    assert policies.for_host("x.cdn.org").platform == "*.cdn.org"  # a pattern entry is not "other"


def test_unreadable_policy_file_names_the_variable(tmp_path) -> None:
    """COMMTEL_POLICIES_FILE pointing nowhere is a ConfigurationError naming it, not an OSError."""
    with pytest.raises(ConfigurationError, match="COMMTEL_POLICIES_FILE"):
        HostPolicies.from_env({"COMMTEL_POLICIES_FILE": str(tmp_path / "missing.toml")})
