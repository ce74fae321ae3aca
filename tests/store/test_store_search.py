"""Profile lookup by id, PROPERTY=VALUE or a bare value; property names from the value index."""

from __future__ import annotations

import re

import pytest
from store_helpers import put

from bctui.errors import NotFoundError
from bctui.store import ProfileStore, ProfileWrite
from bctui.store.properties import property_names
from bctui.store.search import find_profile, search_profiles


@pytest.fixture
def filled(store: ProfileStore) -> ProfileStore:
    put(store, "p-ada", email="ada@example.com", braze_external_id="C1", points=5, country="NL")
    put(
        store,
        "p-bram",
        email="bram@example.com",
        braze_external_id="C2",
        points="5",
        country=["DE", "NL"],
    )
    put(store, "p-cor", email="cor@example.com", phone="+31612345678", nickname="ada@example.com")
    put(store, "p-eq", email="x=y@example.com", note="a=b")
    return store


def _ids(store: ProfileStore, text: str, **kwargs: int) -> list[str]:
    return [m.profile_id for m in search_profiles(store, text, **kwargs).matches]


def test_an_id_finds_that_profile(filled: ProfileStore) -> None:
    search = search_profiles(filled, "  p-bram ")
    assert search.kind == "id" and _ids(filled, "p-bram") == ["p-bram"]


def test_property_equals_value(filled: ProfileStore) -> None:
    search = search_profiles(filled, "email=bram@example.com")
    assert search.kind == "property" and search.property_name == "email"
    assert [(m.profile_id, m.properties) for m in search.matches] == [("p-bram", ("email",))]
    assert _ids(filled, "email = bram@example.com") == ["p-bram"]  # blanks around = are fine
    assert _ids(filled, "points=5") == ["p-ada", "p-bram"]  # the number 5 and the text "5"
    assert _ids(filled, "email=nobody@example.com") == []
    assert search_profiles(filled, "email=nobody@example.com").message == (
        "no profile has email=nobody@example.com"
    )


def test_a_bare_value_is_looked_up_in_every_property(filled: ProfileStore) -> None:
    search = search_profiles(filled, "ada@example.com")
    assert search.kind == "value"
    assert [(m.profile_id, m.properties) for m in search.matches] == [
        ("p-ada", ("email",)),
        ("p-cor", ("nickname",)),
    ]
    assert search.message == '2 profiles have the value "ada@example.com"'
    assert _ids(filled, "+31612345678") == ["p-cor"]
    assert _ids(filled, "C2") == ["p-bram"]
    assert _ids(filled, "NL") == ["p-ada", "p-bram"]  # any of a multi-valued property's values
    assert _ids(filled, "Ada@Example.COM") == ["p-ada", "p-cor"]  # also its lower-case form
    assert _ids(filled, "5") == ["p-ada", "p-bram"]


def test_text_with_an_equals_sign_that_is_no_property_is_a_value(filled: ProfileStore) -> None:
    assert _ids(filled, "x=y@example.com") == ["p-eq"]
    assert _ids(filled, "note=a=b") == ["p-eq"]  # PROPERTY=VALUE splits at the first "="


def test_limit_and_more(store: ProfileStore) -> None:
    with store.transaction() as tx:
        tx.apply_many([ProfileWrite(f"p{i:02}", [("country", "set", "NL")]) for i in range(7)])
    search = search_profiles(store, "NL", limit=5)
    assert [m.profile_id for m in search.matches] == [f"p{i:02}" for i in range(5)]
    assert search.more and search.message == 'more than 5 profiles have the value "NL"'
    assert not search_profiles(store, "NL", limit=7).more
    assert search_profiles(store, "country=NL", limit=6).more


def test_nothing_matches(filled: ProfileStore) -> None:
    assert search_profiles(filled, "  ").kind == "empty"
    search = search_profiles(filled, "nobody")
    assert search.matches == () and "no profile has the id or a property value" in search.message


def test_find_profile_gives_the_oldest_or_a_clear_error(filled: ProfileStore) -> None:
    profile, search = find_profile(filled, "ada@example.com")
    assert profile.id == "p-ada" and len(search.matches) == 2
    assert find_profile(filled, "p-cor")[0].properties["phone"] == ["+31612345678"]
    with pytest.raises(NotFoundError, match=re.escape("no profile has email=nobody@example.com")):
        find_profile(filled, "email=nobody@example.com")
    with pytest.raises(NotFoundError, match='no profile has a property named "mail"'):
        find_profile(filled, "mail=ada@example.com")
    with pytest.raises(NotFoundError, match='no profile with id "nobody"'):
        find_profile(filled, "nobody")


def test_property_names(filled: ProfileStore) -> None:
    everything = ["braze_external_id", "country", "email", "nickname", "note", "phone", "points"]
    assert property_names(filled) == everything
    assert property_names(filled, "n") == ["nickname", "note"]
    assert property_names(filled, "no") == ["note"]
    assert property_names(filled, "zz") == []
    assert property_names(filled, limit=2) == ["braze_external_id", "country"]
    assert property_names(filled, "", limit=0) == []


@pytest.mark.sqlite_only("the plan of SQLite's value index")
def test_the_any_property_lookup_seeks_the_index(filled: ProfileStore) -> None:
    from bctui.store.search import _NAMES_CTE

    plan = filled.query(
        "EXPLAIN QUERY PLAN "
        + _NAMES_CTE
        + " SELECT v.pid FROM names AS n JOIN prop AS v ON v.name = n.name AND v.value IN (?)",
        ("ada@example.com",),
    ).fetchall()
    details = [row[3] for row in plan]
    assert any("USING PRIMARY KEY (name=? AND value=?)" in d for d in details)
    assert not any(d == "SCAN prop" or d == "SCAN v" for d in details)
