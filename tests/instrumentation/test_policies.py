"""Per-host/platform policies from code, TOML and the environment, validated with named fields."""

from __future__ import annotations

import pytest

from hypothesis import given
from hypothesis import strategies as st

from commtel import CircuitBreaker, ConfigurationError, RetryConfig
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
    assert policies.for_host("other.org").platform == "other.org"


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


def test_retry_methods_default_to_idempotent_ones() -> None:
    """GET is retried, POST is not, unless retry_methods says so."""
    scope = HostPolicies().for_host("a.org")
    assert scope.guard("HTTP GET", http_method="GET").retry is not None
    assert scope.guard("HTTP POST", http_method="POST").retry is None
    everything = HostPolicies(default=HostPolicy(retry_methods="*")).for_host("a.org")
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
