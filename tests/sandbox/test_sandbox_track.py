"""`POST /users/track` against the reference's own examples and rules (reference §7, §13)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from bctui.sandbox import Sandbox, SimulatorSettings

# §7.5 attribute example, verbatim.
ATTRIBUTES_EXAMPLE: dict[str, Any] = {
    "attributes": [
        {
            "external_id": "user1",
            "first_name": "Jon",
            "has_profile_picture": True,
            "dob": "1988-02-14",
            "music_videos_favorited": {
                "add": ["calvinharris-summer"],
                "remove": ["nickiminaj-anaconda"],
            },
        },
        {
            "external_id": "user2",
            "first_name": "Jill",
            "has_profile_picture": False,
            "push_tokens": [
                {
                    "app_id": "Your App Identifier",
                    "token": "abcd",
                    "device_id": "optional_field_value",
                }
            ],
        },
        {
            "user_alias": {"alias_name": "device123", "alias_label": "my_device_identifier"},
            "first_name": "Alice",
            "has_profile_picture": False,
        },
        {
            "external_id": "user3",
            "subscription_groups": [
                {
                    "subscription_group_id": "subscription_group_identifier",
                    "subscription_state": "subscribed",
                }
            ],
        },
    ]
}

# §7.9 example request, verbatim.
EXAMPLE_REQUEST: dict[str, Any] = {
    "attributes": [
        {
            "email": "test@braze.com",
            "string_attribute": "fruit",
            "boolean_attribute_1": True,
            "integer_attribute": 26,
            "array_attribute": ["banana", "apple"],
        }
    ],
    "events": [
        {
            "email": "test@braze.com",
            "app_id": "your_app_identifier",
            "name": "rented_movie",
            "time": "2022-12-06T19:20:45+01:00",
            "properties": {
                "release": {"studio": "FilmStudio", "year": "2022"},
                "cast": [{"name": "Actor1"}, {"name": "Actor2"}],
            },
        },
        {
            "user_alias": {"alias_name": "device123", "alias_label": "my_device_identifier"},
            "app_id": "your_app_identifier",
            "name": "rented_movie",
            "time": "2013-07-16T19:20:50+01:00",
        },
    ],
    "purchases": [
        {
            "email": "test@braze.com",
            "app_id": "your_app_identifier",
            "product_id": "product_name",
            "currency": "USD",
            "price": 12.12,
            "quantity": 6,
            "time": "2017-05-12T18:47:12Z",
            "properties": {
                "color": "red",
                "monogram": "ABC",
                "checkout_duration": 180,
                "size": "Large",
                "brand": "Backpack Locker",
            },
        }
    ],
}

NOTHING_VALID = "Valid data must be provided in the 'attributes', 'events', or 'purchases' fields."
ID_REQUIRED = "'external_id', 'braze_id', 'user_alias', 'email' or 'phone' is required"


def track(client: httpx.Client, body: dict[str, Any]) -> httpx.Response:
    return client.post("/users/track", json=body)


def custom(sandbox: Sandbox, external_id: str) -> dict[str, Any]:
    user = sandbox.sim.user(external_id=external_id)
    assert user is not None, external_id
    return dict(user["custom_attributes"])


def test_attributes_example(sandbox: Sandbox, client: httpx.Client) -> None:
    response = track(client, ATTRIBUTES_EXAMPLE)
    assert response.status_code == 201
    assert response.json() == {"attributes_processed": 4, "message": "success"}

    user1 = sandbox.sim.user(external_id="user1")
    assert user1 is not None
    assert user1["first_name"] == "Jon"
    assert user1["dob"] == "1988-02-14"
    assert user1["custom_attributes"] == {
        "has_profile_picture": True,
        "music_videos_favorited": ["calvinharris-summer"],
    }
    user2 = sandbox.sim.user(external_id="user2")
    assert user2 is not None
    assert user2["push_tokens"][0]["token"] == "abcd"
    assert user2["custom_attributes"] == {"has_profile_picture": False}
    user3 = sandbox.sim.user(external_id="user3")
    assert user3 is not None
    assert user3["subscription_groups"] == [
        {
            "subscription_group_id": "subscription_group_identifier",
            "subscription_state": "subscribed",
        }
    ]
    # a user_alias defaults to "update only": the alias-only profile is not created
    assert sandbox.sim.user(alias=("device123", "my_device_identifier")) is None


def test_example_request(sandbox: Sandbox, client: httpx.Client) -> None:
    response = track(client, EXAMPLE_REQUEST)
    assert response.status_code == 201
    assert response.json() == {
        "attributes_processed": 1,
        "events_processed": 2,
        "purchases_processed": 1,
        "message": "success",
    }
    user = sandbox.sim.user(email="test@braze.com")
    assert user is not None
    assert user["external_id"] is None  # an email-only user
    assert user["custom_attributes"] == {
        "string_attribute": "fruit",
        "boolean_attribute_1": True,
        "integer_attribute": 26,
        "array_attribute": ["banana", "apple"],
    }
    assert user["custom_events"] == [
        {
            "name": "rented_movie",
            "first": "2022-12-06T18:20:45.000Z",
            "last": "2022-12-06T18:20:45.000Z",
            "count": 1,
        }
    ]
    assert user["purchases"][0]["name"] == "product_name"
    assert user["purchases"][0]["count"] == 6
    assert user["total_revenue"] == pytest.approx(72.72)
    # 4 custom attributes + 1 event + 6 purchases (the email is the lookup, not a write)
    assert user["data_points"] == 11


def test_alias_only_profile_is_created_with_update_existing_only_false(
    sandbox: Sandbox, client: httpx.Client
) -> None:
    body = {
        "attributes": [
            {
                "_update_existing_only": False,
                "user_alias": {"alias_name": "example_name", "alias_label": "example_label"},
                "email": "email@example.com",
            }
        ]
    }
    response = track(client, body)
    assert response.status_code == 201
    user = sandbox.sim.user(alias=("example_name", "example_label"))
    assert user is not None
    assert user["email"] == "email@example.com"
    assert user["user_aliases"] == [{"alias_name": "example_name", "alias_label": "example_label"}]


def test_partial_success_reports_errors_by_array_and_index(
    sandbox: Sandbox, client: httpx.Client
) -> None:
    body = {
        "events": [
            {"external_id": "ev1", "name": "opened", "time": "2024-01-01T00:00:00Z"},
            {"name": "opened", "time": "2024-01-01T00:00:00Z"},
        ],
        "purchases": [
            {
                "external_id": "ev1",
                "product_id": "p",
                "currency": "USD",
                "price": 1,
                "quantity": 1000,
                "time": "2024-01-01T00:00:00Z",
            }
        ],
    }
    response = track(client, body)
    assert response.status_code == 201
    assert response.json() == {
        "events_processed": 1,
        "message": "success",
        "errors": [
            {"type": ID_REQUIRED, "input_array": "events", "index": 1},
            {"type": "'quantity' is not valid", "input_array": "purchases", "index": 0},
        ],
    }
    assert sandbox.sim.stats["rejected_objects"] == 2


def test_all_invalid_is_400_with_every_error(client: httpx.Client) -> None:
    body = {
        "events": [
            {"name": "e", "time": "2024-01-01T00:00:00Z"},
            {"name": "e", "time": "2024-01-01T00:00:00Z"},
        ],
        "purchases": [
            {
                "email": "a@example.com",
                "product_id": "p",
                "currency": "USD",
                "price": 1,
                "quantity": 0,
                "time": "2024-01-01T00:00:00Z",
            }
        ],
    }
    response = track(client, body)
    assert response.status_code == 400
    assert response.json() == {
        "message": NOTHING_VALID,
        "errors": [
            {"type": ID_REQUIRED, "input_array": "events", "index": 0},
            {"type": ID_REQUIRED, "input_array": "events", "index": 1},
            {"type": "'quantity' is not valid", "input_array": "purchases", "index": 0},
        ],
    }


def test_75_objects_combined_is_the_limit(sandbox: Sandbox, client: httpx.Client) -> None:
    attributes = [{"external_id": f"lim-{i}", "n": i} for i in range(50)]
    events = [
        {"external_id": f"lim-{i}", "name": "e", "time": "2024-01-01T00:00:00Z"} for i in range(25)
    ]
    assert track(client, {"attributes": attributes, "events": events}).status_code == 201
    response = track(client, {"attributes": attributes, "events": [*events, events[0]]})
    assert response.status_code == 400
    assert "Max Input Length Exceeded" in response.json()["message"]
    assert sandbox.sim.user(external_id="lim-49") is not None


def test_legacy_mode_allows_75_per_array(make_sandbox: Any) -> None:
    box = make_sandbox(users=0, settings=SimulatorSettings(object_limit_mode="legacy75PerArray"))
    with httpx.Client(
        base_url=box.braze_url, headers={"Authorization": f"Bearer {box.api_key}"}
    ) as http:
        attributes = [{"external_id": f"leg-{i}", "n": i} for i in range(75)]
        events = [
            {"external_id": f"leg-{i}", "name": "e", "time": "2024-01-01T00:00:00Z"}
            for i in range(75)
        ]
        response = http.post("/users/track", json={"attributes": attributes, "events": events})
        assert response.status_code == 201
        assert response.json()["attributes_processed"] == 75
        response = http.post("/users/track", json={"attributes": [*attributes, attributes[0]]})
        assert response.status_code == 400


def test_more_than_one_primary_identifier_rejects_the_object(
    sandbox: Sandbox, client: httpx.Client
) -> None:
    body = {
        "attributes": [
            {"external_id": "two-ids", "braze_id": "5fbd99bac125ca40511f2cb1", "a": 1},
            {"external_id": "one-id", "a": 1},
        ]
    }
    response = track(client, body)
    assert response.status_code == 201
    errors = response.json()["errors"]
    assert [(e["input_array"], e["index"]) for e in errors] == [("attributes", 0)]
    assert sandbox.sim.user(external_id="two-ids") is None
    assert sandbox.sim.user(external_id="one-id") is not None


def test_external_id_over_987_bytes_is_rejected(sandbox: Sandbox, client: httpx.Client) -> None:
    body = {"attributes": [{"external_id": "é" * 494, "a": 1}, {"external_id": "x" * 987, "a": 1}]}
    response = track(client, body)
    assert response.status_code == 201
    (error,) = response.json()["errors"]
    assert error["index"] == 0
    assert "987 bytes" in error["type"]
    assert sandbox.sim.user(external_id="x" * 987) is not None


def test_invalid_email_is_rejected(sandbox: Sandbox, client: httpx.Client) -> None:
    body = {
        "attributes": [
            {"external_id": "bad-email", "email": "not-an-email"},
            {"external_id": "good-email", "email": "good@example.com"},
        ]
    }
    response = track(client, body)
    assert response.status_code == 201
    (error,) = response.json()["errors"]
    assert error == {
        "type": "The value provided for 'email' is not a valid email address.",
        "input_array": "attributes",
        "index": 0,
    }
    assert sandbox.sim.user(external_id="bad-email") is None


def test_update_existing_only_never_creates(sandbox: Sandbox, client: httpx.Client) -> None:
    body = {"attributes": [{"external_id": "ghost", "_update_existing_only": True, "a": 1}]}
    response = track(client, body)
    # accepted and counted (Braze drops it asynchronously), but no user appears
    assert response.status_code == 201
    assert response.json() == {"attributes_processed": 1, "message": "success"}
    assert sandbox.sim.user(external_id="ghost") is None
    assert sandbox.sim.stats["update_only_skipped"] == 1
    assert sandbox.sim.stats["data_points"] == 0
    track(client, {"attributes": [{"external_id": "ghost", "a": 1}]})
    track(client, {"attributes": [{"external_id": "ghost", "_update_existing_only": True, "a": 2}]})
    assert custom(sandbox, "ghost") == {"a": 2}


def test_email_lookup_prefers_the_recently_updated_user_with_an_external_id(
    sandbox: Sandbox, client: httpx.Client
) -> None:
    shared = "shared@example.com"
    track(client, {"attributes": [{"external_id": "with-id", "email": shared}]})
    track(
        client,
        {
            "attributes": [
                {
                    "user_alias": {"alias_name": "n", "alias_label": "l"},
                    "_update_existing_only": False,
                    "email": shared,
                }
            ]
        },
    )
    track(client, {"attributes": [{"email": shared, "picked": True}]})
    assert custom(sandbox, "with-id") == {"picked": True}


def test_email_wins_over_phone_without_a_primary_identifier(
    sandbox: Sandbox, client: httpx.Client
) -> None:
    track(client, {"attributes": [{"external_id": "by-phone", "phone": "+31612345678"}]})
    track(client, {"attributes": [{"external_id": "by-email", "email": "who@example.com"}]})
    # the phone here is only an attribute of the user the email finds
    track(client, {"attributes": [{"email": "who@example.com", "phone": "+31699999999", "x": 1}]})
    assert custom(sandbox, "by-email") == {"x": 1}
    assert custom(sandbox, "by-phone") == {}
    # without an email, the phone finds the user
    track(client, {"attributes": [{"phone": "+31 6 1234 5678", "y": 2}]})
    assert custom(sandbox, "by-phone") == {"y": 2}


def test_braze_id_updates_but_never_creates(sandbox: Sandbox, client: httpx.Client) -> None:
    seeded = next(u for u in sandbox.sim.users if u["external_id"])
    body = {
        "attributes": [
            {"braze_id": seeded["braze_id"], "tagged": True},
            {"braze_id": "ffffffffffffffffffffffff", "tagged": True},
        ]
    }
    assert track(client, body).status_code == 201
    assert custom(sandbox, seeded["external_id"])["tagged"] is True
    assert sandbox.sim.user(braze_id="ffffffffffffffffffffffff") is None


def test_custom_attribute_semantics(sandbox: Sandbox, client: httpx.Client) -> None:
    track(
        client,
        {
            "attributes": [
                {
                    "external_id": "sem",
                    "text": "a",
                    "gone": "soon",
                    "count": 5,
                    "tags": ["hotdog", "hotdog", "hotdog", "pizza"],
                    "address": {"city": "Utrecht", "zip": "3511"},
                }
            ]
        },
    )
    assert custom(sandbox, "sem") == {
        "text": "a",
        "gone": "soon",
        "count": 5,
        "tags": ["hotdog", "pizza"],
        "address": {"city": "Utrecht", "zip": "3511"},
    }
    track(
        client,
        {
            "attributes": [
                {
                    "external_id": "sem",
                    "gone": None,
                    "count": {"inc": -2},
                    "fresh": {"inc": 3},
                    "tags": {"add": ["hotdog", "taco"], "remove": ["pizza"]},
                    "address": {"city": "Amsterdam"},
                }
            ]
        },
    )
    assert custom(sandbox, "sem") == {
        "text": "a",
        "count": 3,
        "fresh": 3,
        "tags": ["hotdog", "taco"],
        "address": {"city": "Amsterdam"},  # overwritten without _merge_objects
    }
    track(
        client,
        {
            "attributes": [
                {
                    "external_id": "sem",
                    "_merge_objects": True,
                    "address": {"zip": "1011"},
                    "tags": {"add": ["hotdog"]},  # present values move to the end
                }
            ]
        },
    )
    state = custom(sandbox, "sem")
    assert state["address"] == {"city": "Amsterdam", "zip": "1011"}
    assert state["tags"] == ["taco", "hotdog"]


def test_arrays_keep_the_25_most_recent_values(sandbox: Sandbox, client: httpx.Client) -> None:
    values = [f"v{i}" for i in range(30)]
    track(client, {"attributes": [{"external_id": "arr", "big": values}]})
    assert custom(sandbox, "arr")["big"] == values[5:]
    track(client, {"attributes": [{"external_id": "arr", "big": {"add": ["new"]}}]})
    assert custom(sandbox, "arr")["big"] == [*values[6:], "new"]


def test_array_of_objects_operators(sandbox: Sandbox, client: httpx.Client) -> None:
    pets = [{"id": 1, "type": "dog"}, {"id": 4, "type": "fish"}]
    track(client, {"attributes": [{"external_id": "pets", "pets": pets}]})
    track(
        client,
        {
            "attributes": [
                {
                    "external_id": "pets",
                    "pets": {
                        "$add": [{"id": 5, "type": "cat"}],
                        "$remove": [{"$identifier_key": "id", "$identifier_value": 1}],
                        "$update": [
                            {
                                "$identifier_key": "id",
                                "$identifier_value": 4,
                                "$new_object": {"type": "goldfish"},
                            }
                        ],
                    },
                }
            ]
        },
    )
    assert custom(sandbox, "pets")["pets"] == [
        {"id": 4, "type": "goldfish"},
        {"id": 5, "type": "cat"},
    ]


def test_standard_fields_are_kept_apart_from_custom_attributes(
    sandbox: Sandbox, client: httpx.Client
) -> None:
    track(
        client,
        {
            "attributes": [
                {
                    "external_id": "std",
                    "first_name": "Ann",
                    "country": "Australia",
                    "language": "nl",
                    "gender": "female",
                    "time_zone": "Europe/Amsterdam",
                    "email_subscribe": "opted_in",
                    "current_location": {"longitude": 4.9, "latitude": 52.37},
                    "favorite": "blue",
                }
            ]
        },
    )
    user = sandbox.sim.user(external_id="std")
    assert user is not None
    assert (user["first_name"], user["country"], user["language"], user["gender"]) == (
        "Ann",
        "AU",
        "nl",
        "F",
    )
    assert user["time_zone"] == "Europe/Amsterdam"
    assert user["custom_attributes"] == {"favorite": "blue"}
    # unknown time zones are not set; unmappable countries become null
    track(
        client,
        {
            "attributes": [
                {"external_id": "std", "time_zone": "Mars/Olympus", "country": "Atlantis"}
            ]
        },
    )
    user = sandbox.sim.user(external_id="std")
    assert user is not None
    assert user["time_zone"] == "Europe/Amsterdam"
    assert "country" not in user


@pytest.mark.parametrize(
    ("attribute", "fragment"),
    [
        ({"email_subscribe": "maybe"}, "email_subscribe"),
        ({"push_subscribe": "yes"}, "push_subscribe"),
        ({"current_location": {"longitude": 1}}, "current_location"),
        ({"subscription_groups": {"id": 1}}, "subscription_groups"),
        (
            {"subscription_groups": [{"subscription_group_id": "g", "subscription_state": "x"}]},
            "subscription_state",
        ),
        ({"push_tokens": "abc"}, "push_tokens"),
        ({"email_subscription_info": {}}, "email_subscription_info"),
    ],
)
def test_documented_attribute_errors_reject_the_object(
    client: httpx.Client, attribute: dict[str, Any], fragment: str
) -> None:
    response = track(client, {"attributes": [{"external_id": "err", **attribute}]})
    assert response.status_code == 400
    (error,) = response.json()["errors"]
    assert fragment in error["type"]


@pytest.mark.parametrize(
    ("event", "problem"),
    [
        ({"time": "2024-01-01T00:00:00Z"}, "'name' is required"),
        ({"name": "e"}, "'time' is required"),
        ({"name": "e", "time": "yesterday"}, "'time' is not valid"),
        ({"name": "e", "time": "2024-01-01T00:00:00Z", "properties": {"time": 1}}, "reserved"),
        ({"name": "e", "time": "2024-01-01T00:00:00Z", "properties": {"$x": 1}}, "not valid"),
    ],
)
def test_event_validation(client: httpx.Client, event: dict[str, Any], problem: str) -> None:
    response = track(client, {"events": [{"external_id": "ev", **event}]})
    assert response.status_code == 400
    assert problem in response.json()["errors"][0]["type"]


def test_braze_colon_millisecond_times_are_accepted(sandbox: Sandbox, client: httpx.Client) -> None:
    event = {"external_id": "colon", "name": "e", "time": "2013-07-16T19:20:50:123Z"}
    assert track(client, {"events": [event]}).status_code == 201
    user = sandbox.sim.user(external_id="colon")
    assert user is not None
    assert user["custom_events"][0]["first"] == "2013-07-16T19:20:50.123Z"


@pytest.mark.parametrize(
    ("purchase", "problem"),
    [
        ({"currency": "USD", "price": 1}, "'product_id' is required"),
        ({"product_id": "p", "price": 1}, "'currency' is required"),
        ({"product_id": "p", "currency": "DOLLARS", "price": 1}, "'currency' is not valid"),
        ({"product_id": "p", "currency": "USD"}, "'price' is required"),
        ({"product_id": "p", "currency": "USD", "price": "1"}, "'price' is not valid"),
    ],
)
def test_purchase_validation(client: httpx.Client, purchase: dict[str, Any], problem: str) -> None:
    body = {"purchases": [{"external_id": "pu", "time": "2024-01-01T00:00:00Z", **purchase}]}
    response = track(client, body)
    assert response.status_code == 400
    assert response.json()["errors"][0]["type"] == problem


def test_events_for_an_alias_never_create_a_user(sandbox: Sandbox, client: httpx.Client) -> None:
    event = {
        "user_alias": {"alias_name": "a", "alias_label": "l"},
        "_update_existing_only": False,
        "name": "e",
        "time": "2024-01-01T00:00:00Z",
    }
    assert track(client, {"events": [event]}).status_code == 201
    assert sandbox.sim.user(alias=("a", "l")) is None


def test_data_points_per_attribute_write(sandbox: Sandbox, client: httpx.Client) -> None:
    body = {
        "attributes": [
            {
                "external_id": "dp",  # free: identifier
                "_update_existing_only": False,  # free: control flag
                "email_subscribe": "subscribed",  # free: subscription state
                "first_name": "Ann",  # 1
                "email": "dp@example.com",  # 1: an attribute here, as a primary id is present
                "plain": "x",  # 1
                "removed": None,  # 1
                "whole_array": ["a", "b", "c"],  # 1
                "added": {"add": ["a", "b"], "remove": ["c"]},  # 3: one per value
                "counter": {"inc": 5},  # 1
                "nested": {"a": 1, "b": {"c": 2, "d": 3}},  # 3: one per key
            }
        ]
    }
    assert track(client, body).status_code == 201
    user = sandbox.sim.user(external_id="dp")
    assert user is not None
    assert user["data_points"] == 12
    # sending the same values again costs again: Braze bills writes, not changes
    track(client, {"attributes": [{"external_id": "dp", "plain": "x"}]})
    assert sandbox.sim.user(external_id="dp")["data_points"] == 13  # type: ignore[index]
    assert sandbox.sim.stats["data_points"] == 13


def test_bench_mode_counts_without_keeping_users(make_sandbox: Any) -> None:
    box = make_sandbox(users=0, settings=SimulatorSettings(bench_mode=True))
    with httpx.Client(
        base_url=box.braze_url, headers={"Authorization": f"Bearer {box.api_key}"}
    ) as http:
        body = {"attributes": [{"external_id": f"b{i}", "a": 1, "b": 2} for i in range(75)]}
        body["attributes"].append({"a": 1})  # no identifier: still validated
        body["attributes"].pop(0)
        response = http.post("/users/track", json=body)
        assert response.status_code == 201
        assert response.json()["attributes_processed"] == 74
        assert response.json()["errors"][0]["index"] == 74
        stats = http.get("/_sandbox/stats").json()
    assert stats["data_points"] == 148
    assert stats["users"] == 0
    assert box.sim.user(external_id="b1") is None
