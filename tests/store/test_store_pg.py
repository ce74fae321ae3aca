"""The PostgreSQL store: clear errors for a server that cannot be used, and concurrency across
connections (as across hosts): change sequences commit in order, `sum` and `add` lose nothing."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import psycopg
import pytest
from store_helpers import put

from bctui.errors import BctuiError
from bctui.store import ProfileWrite, Rule, SegmentDef, open_store
from bctui.store.pg.store import PgStore

T = TypeVar("T")


def wait_for(predicate: Callable[[], T | None], what: str, timeout: float = 20.0) -> T:
    """Poll `predicate` until it gives something truthy; fail naming `what` at the deadline."""
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.02)
    return value


@pytest.fixture
def db(pg_cluster: Any) -> str:
    """A new, empty database's name."""
    return str(pg_cluster.create_database())


# -- errors -----------------------------------------------------------------------------------


def _refused(url: str, password: str | None = None) -> BctuiError:
    with pytest.raises(BctuiError) as caught:
        open_store(url, Path("/nonexistent"), password=password)
    return caught.value


def test_an_unreachable_server(monkeypatch: pytest.MonkeyPatch) -> None:
    error = _refused("postgresql://bctui:s3cret-pw@127.0.0.1:1/profiles")  # nobody listens
    assert "cannot reach the PostgreSQL server at 127.0.0.1:1" in error.message
    assert "Connection refused" in error.message
    assert "host and port" in error.fix
    assert error.where == "postgresql://bctui:***@127.0.0.1:1/profiles"
    assert "s3cret-pw" not in f"{error} {error.where} {error.fix} {error!r}"


def test_a_wrong_password(pg_cluster: Any, db: str) -> None:
    error = _refused(pg_cluster.url(db, password=False), password="not-the-password")
    assert error.message == 'PostgreSQL refused the password of user "bctui"'
    assert "[store] password" in error.fix and "PGPASSWORD" in error.fix
    assert "not-the-password" not in f"{error} {error.where} {error.fix}"


def test_no_password_at_all(pg_cluster: Any, db: str, monkeypatch: pytest.MonkeyPatch,
                            tmp_path: Path) -> None:
    monkeypatch.delenv("PGPASSWORD", raising=False)
    monkeypatch.setenv("PGPASSFILE", str(tmp_path / "no-pgpass"))
    error = _refused(pg_cluster.url(db, password=False))
    assert "asks for a password" in error.message
    assert 'password = "secret:NAME"' in error.fix


def test_libpq_finds_the_password_in_pgpassword(
        pg_cluster: Any, db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from pg_cluster import PASSWORD

    monkeypatch.setenv("PGPASSWORD", PASSWORD)
    with open_store(pg_cluster.url(db, password=False), Path("/nonexistent")) as store:
        assert store.count() == 0


def test_a_missing_database(pg_cluster: Any) -> None:
    error = _refused(pg_cluster.url("no_such_db"))
    where = f"127.0.0.1:{pg_cluster.port}"
    assert error.message == f'the database "no_such_db" does not exist on {where}'
    assert "createdb -O bctui no_such_db" in error.fix


def test_missing_privileges_leave_nothing_half_made(pg_cluster: Any) -> None:
    # A database of another owner: since PostgreSQL 15 others may not CREATE in its schema.
    name = "t_not_ours"
    pg_cluster.admin(f"CREATE DATABASE {name}")
    error = _refused(pg_cluster.url(name))
    assert "cannot create the store's tables" in error.message
    assert "permission denied" in error.message
    assert "GRANT CREATE ON SCHEMA public" in error.fix
    tables = pg_cluster.admin(
        "SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace", name)
    assert tables.strip() == "0"
    pg_cluster.admin("GRANT CREATE ON SCHEMA public TO bctui", name)
    with open_store(pg_cluster.url(name), Path("/nonexistent")) as store:  # now it can
        assert store.count() == 0


def test_the_password_never_shows(pg_cluster: Any, db: str) -> None:
    with PgStore(pg_cluster.url(db, password=False), password="bctui-test-pw") as store:
        assert "bctui-test-pw" not in repr(store)
        assert repr(store) == f"PgStore('postgresql://bctui@127.0.0.1:{pg_cluster.port}/{db}')"
    with PgStore(pg_cluster.url(db)) as store:
        assert "bctui-test-pw" not in repr(store) and ":***@" in repr(store)


def test_two_hosts_migrating_at_once_both_start(pg_cluster: Any, db: str) -> None:
    url = pg_cluster.url(db)
    errors: list[BaseException] = []

    def open_one() -> None:
        try:
            with PgStore(url) as store:
                store.migrate("engine", [["CREATE TABLE t (a TEXT)"], ["CREATE TABLE u (b TEXT)"]])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with PgStore(url) as store:
        version = store.query("SELECT value FROM meta WHERE key = 'schema:engine'").fetchone()
        assert version == ("2",)


# -- concurrency ------------------------------------------------------------------------------


def _blocked(url: str) -> Callable[[], bool]:
    """Whether some other connection to the database waits for a lock."""
    def check() -> bool:
        with psycopg.connect(url, autocommit=True) as conn:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND wait_event_type = 'Lock'"
            ).fetchone()
            return bool(row and row[0])
    return check


@pytest.fixture
def url(pg_cluster: Any, db: str) -> Iterator[str]:
    """A database with the store's tables and one profile, p (points 10, tags ["a"])."""
    url = str(pg_cluster.url(db))
    with PgStore(url) as store:
        put(store, "p", points=10, tags=["a"])
    yield url


def _sum(store: PgStore, amount: int, tag: str) -> int:
    with store.transaction() as tx:
        result = tx.apply(ProfileWrite("p", [("points", "sum", amount), ("tags", "add", tag)]))
    assert result.seq is not None
    return result.seq


def test_a_later_writer_waits_and_neither_sum_nor_add_is_lost(url: str) -> None:
    with PgStore(url) as first, PgStore(url) as second:
        done: list[int] = []
        with first.transaction() as tx:
            seq = tx.apply(ProfileWrite("p", [("points", "sum", 1), ("tags", "add", "b")])).seq
            other = threading.Thread(target=lambda: done.append(_sum(second, 2, "c")))
            other.start()
            wait_for(_blocked(url), "the second writer to wait for the first")
            assert done == []  # it cannot read p (nor take a number) before we commit
        other.join()
        assert seq is not None and done[0] > seq  # committed later: a higher number
        profile = first.get("p")
        assert profile is not None
        assert profile.properties == {"points": [13], "tags": ["a", "b", "c"]}
        assert first.max_seq() == done[0]


def test_concurrent_writers_lose_no_update(url: str) -> None:
    rounds = 15

    def write(amount: int, tag: str) -> None:
        with PgStore(url) as store:
            for i in range(rounds):
                _sum(store, amount, f"{tag}{i}")

    threads = [threading.Thread(target=write, args=(n, f"t{n}-")) for n in (1, 2, 3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with PgStore(url) as store:
        profile = store.get("p")
        assert profile is not None
        assert profile.properties["points"] == [10 + rounds * (1 + 2 + 3)]
        assert len(profile.properties["tags"]) == 1 + 3 * rounds
        assert store.max_seq() == 1 + 3 * rounds


def test_a_watermark_never_passes_a_change_committed_later(url: str) -> None:
    """A reader that has seen every change up to the highest committed number never finds,
    later, a change with a number at or below it."""
    stop = threading.Event()
    seen_up_to = 0
    problems: list[str] = []

    def write(n: int) -> None:
        with PgStore(url) as store:
            for i in range(20):
                with store.transaction() as tx:
                    tx.apply(ProfileWrite(f"w{n}-{i}", [("n", "set", i)]))
                    tx.apply(ProfileWrite("p", [("points", "sum", 1)]))

    def read() -> None:
        nonlocal seen_up_to
        with PgStore(url) as store:
            seen: set[int] = set()
            while not stop.is_set():
                with store.snapshot() as reader:
                    top = int(reader.execute("SELECT value FROM meta WHERE key = 'seq'")
                              .fetchone()[0])
                    seqs = {r[0] for r in reader.execute(
                        "SELECT seq FROM profile WHERE seq <= %s", (top,))}
                new_below = {s for s in seqs - seen if s <= seen_up_to}
                if new_below:
                    problems.append(f"seqs {sorted(new_below)} appeared after {seen_up_to}")
                seen |= seqs
                seen_up_to = max(seen_up_to, top)

    reader = threading.Thread(target=read)
    reader.start()
    writers = [threading.Thread(target=write, args=(n,)) for n in range(3)]
    for thread in writers:
        thread.start()
    for thread in writers:
        thread.join()
    stop.set()
    reader.join()
    assert problems == []
    assert seen_up_to > 0
    with PgStore(url) as store:
        assert store.count() == 1 + 3 * 20
        assert store.max_seq() == 1 + 3 * 20 * 2


# -- plans ------------------------------------------------------------------------------------


@pytest.mark.parametrize("rule", [Rule("country", "eq", "NL"),
                                  Rule("country", "in", ("NL", "BE"))], ids=["eq", "in"])
def test_text_rules_and_lookups_can_use_the_properties_index(url: str, rule: Rule) -> None:
    with PgStore(url) as store:
        store.query("SET enable_seqscan = off")  # a tiny table: ask whether the index *can*
        predicate, params = store.segment_sql(SegmentDef("s", "all", (rule,)))
        plan = store.query(f"EXPLAIN SELECT count(*) FROM profile p WHERE {predicate}", params)
        assert "profile_props" in " ".join(row[0] for row in plan)
        assert store.find_many("tags", ["a", "zz"]) == {"a": ["p"]}
