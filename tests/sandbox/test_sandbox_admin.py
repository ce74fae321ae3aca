"""The `/_sandbox/` admin API used by tests, benchmarks and demo processes."""

from __future__ import annotations

import httpx

from bctui.sandbox import Sandbox


def admin(sandbox: Sandbox) -> httpx.Client:
    return httpx.Client(base_url=f"{sandbox.braze_url}/_sandbox", timeout=10)


def test_stats_count_requests_objects_and_data_points(
    sandbox: Sandbox, client: httpx.Client
) -> None:
    body = {"attributes": [{"external_id": "s1", "a": 1, "b": 2}, {"a": 1}]}
    assert client.post("/users/track", json=body).status_code == 201
    client.get("/segments/list")
    with admin(sandbox) as api:
        stats = api.get("/stats").json()
        assert stats["requests"]["/users/track"] == {"201": 1}
        assert stats["requests"]["/segments/list"] == {"200": 1}
        assert stats["attributes_processed"] == 1
        assert stats["rejected_objects"] == 1
        assert stats["data_points"] == 2
        assert stats["users_created"] == 1
        assert stats["users"] == 201
        assert api.post("/reset-stats").status_code == 200
        stats = api.get("/stats").json()
        assert stats["requests"] == {} and stats["data_points"] == 0
        assert stats["users"] == 201


def test_user_lookup_by_each_identifier(sandbox: Sandbox) -> None:
    users = list(sandbox.sim.users)
    with_all = next(u for u in users if u["external_id"] and u["user_aliases"] and u.get("email"))
    alias = with_all["user_aliases"][0]
    with admin(sandbox) as api:
        for params in (
            {"external_id": with_all["external_id"]},
            {"braze_id": with_all["braze_id"]},
            {"email": with_all["email"].upper()},
            alias,
        ):
            response = api.get("/users", params=params)
            assert response.status_code == 200, params
            assert response.json()["braze_id"] == with_all["braze_id"]
        missing = api.get("/users", params={"external_id": "nobody"})
        assert missing.status_code == 404
        assert "nobody" in missing.json()["message"]
        assert api.get("/users").status_code == 400
        assert api.get("/users", params={"alias_name": "x"}).status_code == 400
        assert api.get("/users/count").json() == {"count": 200, "bench_mode": False}


def test_settings_change_at_run_time(sandbox: Sandbox, client: httpx.Client) -> None:
    with admin(sandbox) as api:
        response = api.post("/settings", json={"fault_500": 1.0, "track_rate_limit": [10, 3]})
        assert response.status_code == 200
        assert response.json()["fault_500"] == 1.0
        assert response.json()["track_rate_limit"] == [10, 3.0]
        assert client.post("/users/track", json={}).status_code == 500
        assert api.post("/settings", json={"fault_500": 0}).status_code == 200
        assert client.post("/users/track", json={}).status_code == 400
        refused = api.post("/settings", json={"latency": 5})
        assert refused.status_code == 400
        assert "latency" in refused.json()["message"]
        assert api.post("/settings", json={"bench_mode": True}).status_code == 400
        assert api.post("/settings", content=b"[1]").status_code == 400
        assert api.get("/settings").json()["fault_500"] == 0


def test_keys_and_exports_for_other_processes(sandbox: Sandbox) -> None:
    with admin(sandbox) as api:
        created = api.post("/keys", json={"permissions": ["segments.list"]})
        assert created.status_code == 201
        key = created.json()["api_key"]
        assert api.post("/keys", json={"permissions": ["nope"]}).status_code == 400
        assert api.get("/exports").json() == {"exports": []}
        assert api.get("/nothing").status_code == 404
    with httpx.Client(base_url=sandbox.braze_url, headers={"Authorization": f"Bearer {key}"}) as c:
        assert c.get("/segments/list").status_code == 200
        assert c.get("/campaigns/list").status_code == 403
