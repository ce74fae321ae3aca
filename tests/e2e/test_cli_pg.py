"""The CLI on a PostgreSQL store: `[store] url` and `password = "env:…"`, as a user sets them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pg_cluster import PASSWORD
from test_cli import EXAMPLE_CONFIG, EXAMPLE_PROFILES, bctui


def test_profiles_on_postgresql_match_sqlite(tmp_path: Path, pg_cluster: Any) -> None:
    url = pg_cluster.url(pg_cluster.create_database(), password=False)
    config = tmp_path / "pg.toml"
    config.write_text(EXAMPLE_CONFIG.read_text().replace(
        'url = "sqlite:///profiles.db"',
        f'url = "{url}"\npassword = "env:BCTUI_TEST_PG_PASSWORD"', 1))
    env = {"BCTUI_TEST_PG_PASSWORD": PASSWORD}

    def pg(*args: str) -> Any:
        return bctui(tmp_path / "pg-state", *args, config=config, env=env)

    loaded = pg("profiles", "load", str(EXAMPLE_PROFILES), "--json")
    assert loaded.returncode == 0, loaded.stderr
    assert json.loads(loaded.stdout)["created"] == 6
    assert not (tmp_path / "pg-state" / "profiles.db").exists()
    assert pg("profiles", "count", "--segment", "vip").stdout.strip() == "3"
    shown = json.loads(pg("profiles", "show", "email=ada@example.com", "--json").stdout)
    assert sorted(shown["segments"]) == ["newsletter", "vip"]

    bctui(tmp_path / "sqlite-state", "profiles", "load", str(EXAMPLE_PROFILES))
    sqlite_dump = bctui(tmp_path / "sqlite-state", "profiles", "dump", "--json").stdout
    assert pg("profiles", "dump", "--json").stdout == sqlite_dump

    wrong = bctui(tmp_path / "pg-state", "profiles", "count", config=config,
                  env={"BCTUI_TEST_PG_PASSWORD": "nope"})
    assert wrong.returncode != 0
    assert 'PostgreSQL refused the password of user "bctui"' in wrong.stderr
    assert "nope" not in wrong.stderr
