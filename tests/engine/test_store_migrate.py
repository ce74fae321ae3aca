"""`bctui store migrate`: a SQLite store with its history copied into PostgreSQL, verified; a
non-empty target refused unless --replace-target; a second run against the copy behaves as on
the original (the watermark holds: nothing more to send)."""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from pg_cluster import PASSWORD
from run_helpers import (
    Workspace,
    braze_segment_id,
    braze_track,
    export_goal,
    import_goal,
    mapping,
    member,
    source,
)

from bctui.engine.runs import state as st
from bctui.sandbox import Sandbox


@pytest.fixture
def original(tmp_path: Path, make_sandbox: Callable[..., Sandbox]) -> Workspace:
    """A SQLite workspace that imported, exported and rejected one profile."""
    box = make_sandbox(users=0)
    braze_track(box, [{"external_id": f"b{i}", "pts": i} for i in range(20)])
    ws = Workspace.create(tmp_path / "sqlite", box, [
        import_goal(braze_segment_id(box, "All Users"),
                    mappings=[mapping("custom_attributes.pts", "points", "sum")]),
        export_goal(mappings=[source("property", "bc_points", "points"),
                              source("property", "email", "mail")]),
    ])
    ws.load([member(f"p{i}", ext=f"b{i}", points=1) for i in range(10)])
    ws.load([{"_id": "p3", "mail": "not an e-mail"}])
    result = ws.run()
    assert result.state == "FINISHED", result.error
    assert not ws.postgres
    return ws


def _env(ws: Workspace) -> dict[str, str]:
    return {"BCTUI_PG_PASSWORD": PASSWORD}


def _migrate(ws: Workspace, target: str, *extra: str) -> Any:
    return ws.cli("store", "migrate", "--from", "sqlite:///profiles.db", "--to", target,
                  "--to-password", "env:BCTUI_PG_PASSWORD", *extra, env=_env(ws))


def _tables(ws: Workspace) -> dict[str, int]:
    with ws.store() as store:
        return {t: ws.engine_rows(t) for t in ("run", "run_goal", "watermark", "export_sent",
                                               "export_failure", "import_file")} | {
            "profiles": store.count(), "seq": store.max_seq()}


def test_a_store_and_its_history_are_copied_and_verified(
    original: Workspace, pg_cluster: Any
) -> None:
    target = pg_cluster.url(pg_cluster.create_database(), password=False)
    done = _migrate(original, target)
    assert done.returncode == 0, done.stderr
    table = {line.split()[0]: line.split() for line in done.stdout.splitlines()[1:]}
    for name in ("profile", "run", "run_goal", "watermark", "export_sent", "export_failure",
                 "import_file", "run_event"):
        row = table[name]
        assert row[1] == row[2] and row[3] == row[4] and row[5] == "yes", row
    assert int(table["profile"][1].replace(",", "")) == 20  # 10 loaded, 10 created by the import

    # The copy as a store of its own: the same profiles, sequences, history and watermark.
    config = tomllib.loads(original.paths.config.read_text())
    config["store"] = {"url": target, "password": "secret:pg"}
    copy = Workspace.create(original.paths.state_dir.parent.parent / "pg", original.sandbox, [],
                            store_url=f"{target}#{PASSWORD}")
    copy.paths.config.write_text(tomli_w.dumps(config))
    assert _tables(copy) == _tables(original)
    assert copy.profiles() == original.profiles()
    with copy.store() as pg, original.store() as lite:
        counts = "SELECT name, profiles FROM prop_name WHERE profiles > 0 ORDER BY name"
        assert pg.query(counts).fetchall() == [tuple(r) for r in lite.query(counts).fetchall()]
    (run,) = copy.runs()
    assert run.state == "FINISHED"
    assert [e.kind for e in copy.store_events(run.id)][-1] == "run_finished"

    # Runs carry on from the copied watermark, last-sent values and failures.
    again = copy.run(goal="export")
    assert again.summary["goals"]["export"]["checked"] == 1  # only the rejected profile again
    with copy.store() as store:
        assert st.failure_reasons(store, st.goal_key("c", "export"))[0][2] == 2


def test_a_non_empty_target_is_refused_unless_replaced(
    original: Workspace, pg_cluster: Any
) -> None:
    target = pg_cluster.url(pg_cluster.create_database(), password=False)
    assert _migrate(original, target).returncode == 0
    refused = _migrate(original, target)
    assert refused.returncode == 1
    assert "already holds bctui data" in refused.stderr and "--replace-target" in refused.stderr
    replaced = _migrate(original, target, "--replace-target")
    assert replaced.returncode == 0, replaced.stderr
    assert "replaced" in replaced.stderr


def test_a_password_on_the_command_line_is_refused(original: Workspace, pg_cluster: Any) -> None:
    target = pg_cluster.url(pg_cluster.create_database(), password=False)
    done = original.cli("store", "migrate", "--from", "sqlite:///profiles.db", "--to", target,
                        "--to-password", PASSWORD)
    assert done.returncode == 2 and PASSWORD not in done.stderr


def test_the_checksum_reads_both_drivers_alike_and_tells_rows_apart() -> None:
    from bctui.engine.store_migrate import Checksum

    sqlite_side, pg_side, other = Checksum(), Checksum(), Checksum()
    sqlite_side.add(("r1", b'{"a":1}', 1.0, True))
    sqlite_side.add(("r2", None, 2.5, 0))
    pg_side.add(("r2", None, 2.5, 0))  # another order, text for bytes, ints for bools
    pg_side.add(("r1", '{"a":1}', 1, 1))
    other.add(("r1", '{"a":2}', 1, 1))
    other.add(("r2", None, 2.5, 0))
    assert sqlite_side.hex == pg_side.hex and sqlite_side.rows == pg_side.rows == 2
    assert other.hex != pg_side.hex
