"""Opening a store: URLs, files, permissions, migrations."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from store_helpers import put

from bctui.errors import BctuiError
from bctui.store import ProfileStore, open_store, store_path
from bctui.store.schema import STORE_MIGRATIONS


def test_relative_url_is_in_the_state_dir(tmp_path: Path) -> None:
    state = tmp_path / "state" / "nested"
    with open_store("sqlite:///profiles.db", state) as store:
        assert store.path == state / "profiles.db"
        put(store, "p1")
    assert (state / "profiles.db").exists()
    assert store_path("sqlite:///sub/p.db", state) == state / "sub" / "p.db"


def test_absolute_url(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere" / "abs.db"
    with open_store(f"sqlite:///{target}", tmp_path / "state") as store:
        assert store.path == target
    assert target.exists()
    assert store_path("sqlite:////srv/p.db", tmp_path) == Path("/srv/p.db")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://db/x", 'unsupported store URL "mysql://db/x"'),
        ("profiles.db", 'unsupported store URL "profiles.db"'),
        ("sqlite://host/p.db", "names a host"),
        ("sqlite:///", "does not name a database file"),
        ("sqlite:///dir/", "does not name a database file"),
        ("sqlite:///p.db?mode=ro", "does not name a database file"),
    ],
)
def test_unsupported_urls(tmp_path: Path, url: str, message: str) -> None:
    with pytest.raises(BctuiError) as caught:
        open_store(url, tmp_path)
    assert message in caught.value.message
    assert caught.value.where == "[store] url"
    assert 'sqlite:///profiles.db' in caught.value.fix
    assert list(tmp_path.iterdir()) == []


def test_a_password_in_the_url_never_shows(tmp_path: Path) -> None:
    with pytest.raises(BctuiError) as caught:
        open_store("postgresql://bob:hunter2@127.0.0.1:1/bctui", tmp_path)  # nobody listens
    assert "hunter2" not in str(caught.value)
    assert "bob:***@127.0.0.1:1" in str(caught.value)


def test_the_file_is_private(tmp_path: Path) -> None:
    with ProfileStore(tmp_path / "p.db") as store:
        put(store, "p1")
        for name in ("p.db", "p.db-wal"):
            mode = stat.S_IMODE((tmp_path / name).stat().st_mode)
            assert mode == 0o600, (name, oct(mode))


def test_a_file_that_is_not_a_store(tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not a database, just some text " * 100)
    with pytest.raises(BctuiError) as caught:
        ProfileStore(junk)
    assert "not a profile store" in caught.value.message
    assert caught.value.where == str(junk)
    assert junk.read_bytes().startswith(b"this is not a database")


def test_an_unwritable_place(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(BctuiError) as caught:
        ProfileStore(blocker / "p.db")
    assert caught.value.where == str(blocker / "p.db")


def test_migrations_run_once_and_in_order(tmp_path: Path) -> None:
    path = tmp_path / "p.db"
    steps = [["CREATE TABLE watermark (goal TEXT PRIMARY KEY, seq INTEGER NOT NULL)"]]
    with ProfileStore(path) as store:
        assert store.migrate("engine", steps) == 1
        assert store.migrate("engine", steps) == 0
        with store.transaction() as tx:
            tx.execute("INSERT INTO watermark VALUES ('g', 5)")
    more = [*steps, ["ALTER TABLE watermark ADD COLUMN note TEXT DEFAULT ''"],
            ["CREATE INDEX watermark_seq ON watermark (seq)"]]
    with ProfileStore(path) as store:
        assert store.migrate("engine", more) == 2
        assert store.query("SELECT goal, seq, note FROM watermark").fetchall() == [("g", 5, "")]
        assert store.query("SELECT value FROM meta WHERE key = 'schema:store'").fetchone() == (
            len(STORE_MIGRATIONS),)


def test_a_failing_migration_applies_nothing(store: ProfileStore) -> None:
    steps = [["CREATE TABLE a (x TEXT)"], ["CREATE TABLE b (y TEXT)", "THIS IS NOT SQL"]]
    with pytest.raises(BctuiError):
        store.migrate("engine", steps)
    if store.dialect == "sqlite":
        tables = store.query("SELECT name FROM sqlite_master WHERE name IN ('a', 'b')")
    else:
        tables = store.query("SELECT to_regclass('a'), to_regclass('b')")
    assert tables.fetchall() in ([], [(None, None)])
    assert store.migrate("engine", steps[:1]) == 1


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "p.db"
    with ProfileStore(path) as store:
        store.migrate("engine", [["CREATE TABLE a (x)"], ["CREATE TABLE b (x)"]])
        with pytest.raises(BctuiError) as caught:
            store.migrate("engine", [["CREATE TABLE a (x)"]])
    assert "newer than this bctui knows" in caught.value.message
    assert "upgrade bctui" in caught.value.fix


def test_repr_shows_the_path_only(tmp_path: Path) -> None:
    with ProfileStore(tmp_path / "p.db") as store:
        assert repr(store) == f"ProfileStore({str(tmp_path / 'p.db')!r})"
