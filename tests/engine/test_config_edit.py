"""Editing connections.toml in place: only what changed is touched, comments and layout survive."""

from __future__ import annotations

import dataclasses
import difflib
import shutil
import stat
from pathlib import Path
from typing import Any

import pytest

from bctui.engine.config import ConfigError, load_config
from bctui.engine.config_edit import ConfigChangedOnDisk, ConfigDocument
from bctui.engine.models import (
    Config,
    Connection,
    ExportGoal,
    ExportMapping,
    ImportGoal,
    ImportMapping,
    Schedule,
)
from bctui.errors import ExitCode
from bctui.store.segments import Rule, SegmentDef

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def path(tmp_path: Path) -> Path:
    target = tmp_path / "connections.toml"
    shutil.copy(ROOT / "connections.toml", target)
    return target


def changed_lines(before: str, after: str) -> tuple[list[str], list[str]]:
    """(lines removed, lines added) between two texts."""
    diff = list(difflib.ndiff(before.splitlines(), after.splitlines()))
    return (
        [line[2:] for line in diff if line.startswith("- ")],
        [line[2:] for line in diff if line.startswith("+ ")],
    )


def main(config: Config) -> Connection:
    conn = config.connection("Braze main")
    assert conn is not None
    return conn


def with_connection(config: Config, conn: Connection) -> Config:
    """`config` with the connection of the same name replaced by `conn`."""
    return dataclasses.replace(
        config, connections=tuple(conn if c.name == conn.name else c for c in config.connections)
    )


def save(path: Path, change: Config, **renames: Any) -> tuple[str, str, Config]:
    """Load, save `change`, return (text before, text after, model re-read by load_config)."""
    before = path.read_text()
    ConfigDocument.load(path).save(change, **renames)
    return before, path.read_text(), load_config(path)


@pytest.mark.parametrize(
    ("field", "line"), [("enabled", "enabled = false"), ("favorite", "favorite = false")]
)
def test_a_toggle_changes_exactly_one_line(path: Path, field: str, line: str) -> None:
    doc = ConfigDocument.load(path)
    conn = dataclasses.replace(main(doc.config), **{field: False})
    before, after, reread = save(path, with_connection(doc.config, conn))
    assert changed_lines(before, after) == ([f"{field} = true"], [line])
    assert reread == with_connection(doc.config, conn)
    # Comments, inline tables and the comment after a value are all still there.
    assert after.startswith("# An example bctui configuration")
    assert 'url = "sqlite:///profiles.db"        # relative to the state directory' in after


def test_saving_an_unchanged_model_writes_the_same_bytes(path: Path) -> None:
    before = path.read_bytes()
    doc = ConfigDocument.load(path)
    again = doc.save(doc.config)
    assert path.read_bytes() == before
    assert again.config == doc.config and not again.changed_on_disk()


def test_rename_a_connection_and_one_goal(path: Path) -> None:
    doc = ConfigDocument.load(path)
    conn = main(doc.config)
    goals = (conn.goals[0], dataclasses.replace(conn.goals[1], name="VIPs out"))
    new_conn = dataclasses.replace(conn, name="Braze prod", goals=goals)
    new = dataclasses.replace(doc.config, connections=(new_conn,))
    before, after, reread = save(
        path,
        new,
        renamed_connections={"Braze main": "Braze prod"},
        renamed_goals={("Braze prod", "VIPs to Braze"): "VIPs out"},
    )
    assert reread == new
    assert changed_lines(before, after) == (
        ['name = "Braze main"', 'name = "VIPs to Braze"'],
        ['name = "Braze prod"', 'name = "VIPs out"'],
    )


def test_copy_a_connection_appends_it_in_the_documented_layout(path: Path) -> None:
    doc = ConfigDocument.load(path)
    copy = dataclasses.replace(main(doc.config), name="Braze copy", enabled=False)
    new = dataclasses.replace(doc.config, connections=(*doc.config.connections, copy))
    before, after, reread = save(path, new)
    assert reread == new
    assert after.startswith(before)  # nothing above changed; the copy is appended
    added = after[len(before) :]
    assert added.startswith('\n[[connection]]\nname = "Braze copy"\nenabled = false\n')
    assert "\n[connection.s3]\n" in added and added.count("[[connection.goal]]") == 2
    assert 'schedule = { kind = "days_of_week", days = ["mon", "fri"], at = "01:30" }' in added


def test_delete_a_connection_keeps_the_others_and_the_comments(path: Path) -> None:
    doc = ConfigDocument.load(path)
    copy = dataclasses.replace(main(doc.config), name="Second", favorite=False)
    doc = doc.save(dataclasses.replace(doc.config, connections=(*doc.config.connections, copy)))
    new = dataclasses.replace(doc.config, connections=(copy,))
    _, after, reread = save(path, new)
    assert reread == new
    assert after.count("[[connection]]") == 1 and '"Braze main"' not in after
    assert after.startswith("# An example bctui configuration")
    assert after.endswith("]\n") and not after.endswith("\n\n")


def test_reorder_connections(path: Path) -> None:
    doc = ConfigDocument.load(path)
    first = main(doc.config)
    second = dataclasses.replace(first, name="Second", goals=first.goals[1:], s3=None)
    doc = doc.save(dataclasses.replace(doc.config, connections=(first, second)))
    new = dataclasses.replace(doc.config, connections=(second, first))
    before, after, reread = save(path, new)
    assert reread == new
    assert sorted(before.splitlines()) == sorted(after.splitlines())
    assert after.index('name = "Second"') < after.index('name = "Braze main"')
    assert after.startswith(before[: before.index("[[connection]]")])


def test_reorder_goals_moves_each_table_with_its_content(path: Path) -> None:
    doc = ConfigDocument.load(path)
    conn = main(doc.config)
    new = with_connection(doc.config, dataclasses.replace(conn, goals=conn.goals[::-1]))
    before, after, reread = save(path, new)
    assert reread == new
    assert sorted(before.splitlines()) == sorted(after.splitlines())  # the same lines, moved
    assert after.index('name = "VIPs to Braze"') < after.index('name = "Braze test users"')
    assert '\n\n[[connection.goal]]\ntype = "import"' in after  # a blank line between goals


def test_edit_mappings_of_a_goal_writes_a_multi_line_array(path: Path) -> None:
    doc = ConfigDocument.load(path)
    conn = main(doc.config)
    goal = conn.goals[0]
    assert isinstance(goal, ImportGoal)
    mappings = (ImportMapping("last_name", "last_name"), ImportMapping("email", "email", "sum"))
    goals = (dataclasses.replace(goal, mappings=mappings), conn.goals[1])
    new = with_connection(doc.config, dataclasses.replace(conn, goals=goals))
    before, after, reread = save(path, new)
    assert reread == new
    assert (
        "mappings = [\n"
        '  { braze = "last_name", property = "last_name", strategy = "set" },\n'
        '  { braze = "email", property = "email", strategy = "sum" },\n'
        "]\n"
    ) in after
    removed, added = changed_lines(before, after)
    assert len(added) == 2 and len(removed) == 3  # only the items of that one array


def test_change_schedule_kind_removes_the_keys_of_the_old_kind(path: Path) -> None:
    doc = ConfigDocument.load(path)
    conn = dataclasses.replace(main(doc.config), schedule=Schedule("cron", expr="0 3 * * *"))
    before, after, reread = save(path, with_connection(doc.config, conn))
    assert reread == with_connection(doc.config, conn)
    assert changed_lines(before, after) == (
        ['schedule = { kind = "days_of_week", days = ["mon", "fri"], at = "01:30" }'],
        ['schedule = { kind = "cron", expr = "0 3 * * *" }'],
    )


def test_remove_s3_deletes_its_table(path: Path) -> None:
    doc = ConfigDocument.load(path)
    conn = main(doc.config)
    exports = tuple(g for g in conn.goals if isinstance(g, ExportGoal))
    new = with_connection(doc.config, dataclasses.replace(conn, s3=None, goals=exports))
    _, after, reread = save(path, new)
    assert reread == new
    assert "[connection.s3]" not in after and "secret:s3-main" not in after
    assert '\n\n[[connection.goal]]\ntype = "export"' in after


def test_add_and_edit_a_segment(path: Path) -> None:
    doc = ConfigDocument.load(path)
    vip, newsletter = doc.config.segments
    edited = dataclasses.replace(vip, rules=(*vip.rules, Rule("tier", "exists")))
    added = SegmentDef("dutch", "all", (Rule("country", "eq", "NL"),))
    new = dataclasses.replace(doc.config, segments=(edited, newsletter, added))
    before, after, reread = save(path, new)
    assert reread == new
    removed, inserted = changed_lines(before, after)
    assert removed == []  # the edited rules array keeps its lines and gains one
    assert '  { property = "tier", op = "exists" },' in inserted
    assert '[[segment]]\nname = "dutch"\nmatch = "all"\n' in after
    # The new segment comes after the others and before the connections.
    assert after.index('name = "newsletter"') < after.index('name = "dutch"')
    assert after.index('name = "dutch"') < after.index("[[connection]]")


def test_rename_a_segment_and_the_goal_that_uses_it(path: Path) -> None:
    doc = ConfigDocument.load(path)
    vip, newsletter = doc.config.segments
    conn = main(doc.config)
    goals = tuple(
        dataclasses.replace(g, segment="big spenders") if isinstance(g, ExportGoal) else g
        for g in conn.goals
    )
    new = dataclasses.replace(
        doc.config,
        segments=(dataclasses.replace(vip, name="big spenders"), newsletter),
        connections=(dataclasses.replace(conn, goals=goals),),
    )
    before, after, reread = save(path, new, renamed_segments={"vip": "big spenders"})
    assert reread == new
    assert changed_lines(before, after) == (
        ['name = "vip"', 'segment = "vip"'],
        ['name = "big spenders"', 'segment = "big spenders"'],
    )


HAND_WRITTEN = """\
# my own notes

# the big ones
[[segment]]
name = "vip"   # keep this name
rules = [{ property = "ltv", op = "gte", value = 1000 }]

# everyone in NL
[[segment]]
name = "nl"
rules = [{ property = "country", op = "eq", value = "NL" }]

[[connection]]
name = "A"
braze = { endpoint = "https://rest.iad-01.braze.com", api_key = 'secret:a' }

[[connection.goal]]
type = "export"
name = "vip out"
segment = "vip"
identifiers = [[{ property = "id", braze = "external_id" }]]
"""


def test_hand_written_layout_survives_a_reorder_and_a_new_key(tmp_path: Path) -> None:
    target = tmp_path / "connections.toml"
    target.write_text(HAND_WRITTEN)
    doc = ConfigDocument.load(target)
    vip, nl = doc.config.segments
    conn = doc.config.connections[0]
    goal = conn.goals[0]
    assert isinstance(goal, ExportGoal)
    goal = dataclasses.replace(goal, mappings=(ExportMapping("profile_id", "bc_id"),))
    conn = dataclasses.replace(conn, description="the main one", goals=(goal,))
    new = dataclasses.replace(doc.config, segments=(nl, vip), connections=(conn,))
    doc.save(new)
    after = target.read_text()
    assert load_config(target) == new
    # Each segment moved with the comment right above it; the file's first comment stayed.
    assert after.startswith('# my own notes\n\n# everyone in NL\n[[segment]]\nname = "nl"\n')
    assert '\n\n# the big ones\n[[segment]]\nname = "vip"   # keep this name\n' in after
    # Keys the file leaves out stay out; the new ones go after their neighbours.
    assert "enabled" not in after and "schedule" not in after and "allow_create" not in after
    assert 'name = "A"\ndescription = "the main one"\nbraze = {' in after
    assert "api_key = 'secret:a'" in after  # quoting style of untouched values kept
    assert 'mappings = [{ source = "profile_id", braze = "bc_id" }]\n' in after


def test_deleting_a_segment_removes_the_comment_above_it(tmp_path: Path) -> None:
    target = tmp_path / "connections.toml"
    target.write_text(HAND_WRITTEN)
    doc = ConfigDocument.load(target)
    new = dataclasses.replace(doc.config, segments=doc.config.segments[:1])
    doc.save(new)
    after = target.read_text()
    assert load_config(target) == new
    assert "everyone in NL" not in after and '"nl"' not in after
    assert "# the big ones\n[[segment]]" in after


def test_refuses_when_the_file_was_edited_meanwhile(path: Path) -> None:
    doc = ConfigDocument.load(path)
    assert not doc.changed_on_disk()
    other = path.read_text().replace("favorite = true", "favorite = false")
    path.write_text(other)
    assert doc.changed_on_disk()
    conn = dataclasses.replace(main(doc.config), enabled=False)
    with pytest.raises(ConfigChangedOnDisk) as caught:
        doc.save(with_connection(doc.config, conn))
    assert caught.value.exit_code == ExitCode.CONFIG
    assert "changed on disk" in caught.value.message and "reload" in caught.value.fix
    assert path.read_text() == other  # the other edit is kept, ours not written


def test_refuses_when_the_file_was_deleted_meanwhile(path: Path) -> None:
    doc = ConfigDocument.load(path)
    path.unlink()
    with pytest.raises(ConfigChangedOnDisk):
        doc.save(doc.config)
    assert not path.exists()


def test_refuses_when_the_file_was_created_meanwhile(tmp_path: Path) -> None:
    target = tmp_path / "connections.toml"
    doc = ConfigDocument.load(target)
    target.write_text((ROOT / "connections.toml").read_text())
    with pytest.raises(ConfigChangedOnDisk):
        doc.save(Config())
    assert target.read_text() == (ROOT / "connections.toml").read_text()


def test_an_invalid_result_is_refused_and_nothing_written(path: Path) -> None:
    doc = ConfigDocument.load(path)
    conn = main(doc.config)
    goals = tuple(
        dataclasses.replace(g, segment="no-such-segment") if isinstance(g, ExportGoal) else g
        for g in conn.goals
    )
    before = path.read_bytes()
    with pytest.raises(ConfigError) as caught:
        doc.save(with_connection(doc.config, dataclasses.replace(conn, goals=goals)))
    assert any('no [[segment]] named "no-such-segment"' in i.message for i in caught.value.issues)
    assert path.read_bytes() == before


def test_an_invalid_file_does_not_load(tmp_path: Path) -> None:
    target = tmp_path / "connections.toml"
    target.write_text('[[connection]]\nname = "half-edited\n')
    with pytest.raises(ConfigError):
        ConfigDocument.load(target)


def test_a_missing_file_is_empty_and_the_first_save_creates_it(tmp_path: Path) -> None:
    target = tmp_path / "new" / "connections.toml"
    doc = ConfigDocument.load(target)
    assert not doc.exists and doc.config == Config() and not doc.changed_on_disk()
    example = load_config(ROOT / "connections.toml")
    saved = doc.save(example)
    assert saved.exists and saved.config == example and not saved.changed_on_disk()
    assert load_config(target) == example
    text = target.read_text()
    assert text.startswith("# bctui connections (DESIGN §7 lists every key). Comments and layout")
    assert "comments are not kept" not in text
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    # The next save edits that file in place.
    conn = dataclasses.replace(main(example), enabled=False)
    before, after, _ = save(target, with_connection(saved.config, conn))
    assert changed_lines(before, after) == (["enabled = true"], ["enabled = false"])


def test_save_keeps_the_mode_of_an_existing_file(path: Path) -> None:
    path.chmod(0o640)
    doc = ConfigDocument.load(path)
    doc.save(with_connection(doc.config, dataclasses.replace(main(doc.config), enabled=False)))
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert sorted(p.name for p in path.parent.iterdir()) == ["connections.toml"]  # no temp files


def test_a_layout_the_edit_does_not_handle_is_still_saved_right(tmp_path: Path) -> None:
    target = tmp_path / "connections.toml"
    target.write_text(
        '# dotted keys\n[[connection]]\nname = "A"\n'
        'braze.endpoint = "https://rest.iad-01.braze.com"\nbraze.api_key = "secret:a"\n'
    )
    doc = ConfigDocument.load(target)
    conn = doc.config.connections[0]
    braze = dataclasses.replace(conn.braze, api_key="env:BRAZE_KEY")
    new = dataclasses.replace(doc.config, connections=(dataclasses.replace(conn, braze=braze),))
    assert doc.save(new).config == new
    assert load_config(target) == new


def test_crlf_files_keep_their_line_endings(tmp_path: Path) -> None:
    target = tmp_path / "connections.toml"
    target.write_bytes((ROOT / "connections.toml").read_bytes().replace(b"\n", b"\r\n"))
    doc = ConfigDocument.load(target)
    conn = dataclasses.replace(main(doc.config), description="", labels=("a", "b"))
    doc.save(with_connection(doc.config, conn))
    data = target.read_bytes()
    assert data.count(b"\n") == data.count(b"\r\n")
    assert b'labels = ["a", "b"]\r\n' in data


def test_budgets_are_written_in_place_and_kept_by_later_edits(path: Path) -> None:
    doc = ConfigDocument.load(path)
    conn = main(doc.config)
    goals = tuple(dataclasses.replace(g, max_data_points=500, on_budget="partial")
                  if isinstance(g, ExportGoal) else g for g in conn.goals)
    budgeted = dataclasses.replace(conn, max_data_points=1000, goals=goals)
    before, after, reread = save(path, with_connection(doc.config, budgeted))
    assert reread == with_connection(doc.config, budgeted)
    removed, added = changed_lines(before, after)
    assert not removed
    assert sorted(added) == ["max_data_points = 1000", "max_data_points = 500",
                             'on_budget = "partial"']
    # An edit of something else (the UI's on/off switch) leaves the budgets as they are.
    doc = ConfigDocument.load(path)
    off = dataclasses.replace(main(doc.config), enabled=False)
    _, _, reread = save(path, with_connection(doc.config, off))
    assert main(reread).max_data_points == 1000
    export = next(g for g in main(reread).goals if isinstance(g, ExportGoal))
    assert (export.max_data_points, export.on_budget) == (500, "partial")
