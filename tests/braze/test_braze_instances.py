"""Braze instances and endpoint validation."""

from __future__ import annotations

import pytest

from bctui.braze import INSTANCES, validate_endpoint
from bctui.braze.instances import instance_for
from bctui.errors import BctuiError


def test_documented_instances_and_unconfirmed_id01() -> None:
    confirmed = {name for name, item in INSTANCES.items() if item.confirmed}
    assert confirmed == {
        "US-01", "US-02", "US-03", "US-04", "US-05", "US-06", "US-07", "US-08", "US-10",
        "EU-01", "EU-02", "AU-01",
    }  # fmt: skip
    assert INSTANCES["US-01"].rest_endpoint == "https://rest.iad-01.braze.com"
    assert INSTANCES["US-10"].rest_endpoint == "https://rest.us-10.braze.com"
    assert INSTANCES["EU-02"].rest_endpoint == "https://rest.fra-02.braze.eu"
    assert INSTANCES["AU-01"].rest_endpoint == "https://rest.au-01.braze.com"
    assert not INSTANCES["ID-01"].confirmed
    assert "US-09" not in INSTANCES


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("https://rest.iad-01.braze.com", "https://rest.iad-01.braze.com"),
        ("  https://REST.iad-01.braze.com/ ", "https://rest.iad-01.braze.com"),
        ("eu-01", "https://rest.fra-01.braze.eu"),
        ("US-10", "https://rest.us-10.braze.com"),
        ("https://braze.example.com:8443/proxy/", "https://braze.example.com:8443/proxy"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("http://localhost:9/", "http://localhost:9"),
        ("http://[::1]:8080", "http://[::1]:8080"),
        ("http://127.5.0.1", "http://127.5.0.1"),
    ],
)
def test_valid_endpoints_are_normalised(given: str, expected: str) -> None:
    assert validate_endpoint(given) == expected


@pytest.mark.parametrize(
    ("given", "says"),
    [
        ("http://rest.iad-01.braze.com", "plain http is only allowed on loopback"),
        ("http://10.0.0.5:8080", "plain http is only allowed on loopback"),
        ("ftp://rest.iad-01.braze.com", "not an http(s) URL"),
        ("rest.iad-01.braze.com", "not an http(s) URL"),
        ("https://user:pw@rest.iad-01.braze.com", "user name or password"),
        ("https://rest.iad-01.braze.com/?x=1", "query or fragment"),
        ("https://rest.iad-01.braze.com:99999", "not a valid URL"),
        ("", "empty"),
    ],
)
def test_invalid_endpoints_name_the_url_and_the_fix(given: str, says: str) -> None:
    with pytest.raises(BctuiError) as caught:
        validate_endpoint(given)
    text = str(caught.value)
    assert says in text
    if given:
        assert repr(given.strip()) in text
    assert "https://rest.iad-01.braze.com" in caught.value.fix


def test_instance_for_known_and_custom_urls() -> None:
    found = instance_for("https://rest.fra-02.braze.eu/")
    assert found is not None and found.name == "EU-02"
    assert instance_for("http://127.0.0.1:1") is None
