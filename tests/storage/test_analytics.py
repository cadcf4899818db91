"""One suite for every analytics backend: the same calls and the same SQL must behave alike.

Backends:
* `chdb` — the in-process engine, always.
* `clickhouse-connect-chdb` — the ClickHouse backend's code (clickhouse-connect's client API)
  driven through clickhouse-connect's embedded chDB client, so that `clickhouse_store` runs
  on every machine even without a server.
* `clickhouse` — a real server at `PV_TEST_CLICKHOUSE_URL`, skipped when it is not set.

Each test gets its own database, dropped afterwards.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import numpy as np
import pyarrow as pa
import pytest

from polyvision.fencing import StaleAttempt, attempt_claimed, claim_attempt, fence_key
from polyvision.storage.analytics import (
    SLICE_TABLES,
    AnalyticsError,
    AnalyticsQueryError,
    AnalyticsStore,
    AnalyticsUnavailableError,
    MigrationError,
    apply_migrations,
    load_migrations,
    open_analytics_store,
)
from polyvision.storage.analytics.clickhouse_store import ClickHouseAnalyticsStore
from polyvision.storage.analytics.migrations import split_statements
from polyvision.storage.objects import open_object_store

CLICKHOUSE_URL = os.environ.get("PV_TEST_CLICKHOUSE_URL", "")
NO_SERVER = "PV_TEST_CLICKHOUSE_URL not set: no ClickHouse server to test against"

ORG = "org-a"
MATCH = "match-1"


@pytest.fixture(scope="module")
def chdb_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # chDB binds one path per process: every store of this module shares this one and is
    # closed after its test, so other modules may use other paths.
    return tmp_path_factory.mktemp("chdb")


@pytest.fixture(
    params=[
        "chdb",
        "clickhouse-connect-chdb",
        pytest.param(
            "clickhouse",
            marks=[
                pytest.mark.clickhouse,
                pytest.mark.skipif(not CLICKHOUSE_URL, reason=NO_SERVER),
            ],
        ),
    ]
)
def bare_store(request: pytest.FixtureRequest, chdb_dir: Path) -> Iterator[AnalyticsStore]:
    """A store on a fresh, empty database, without migrations."""
    database = f"pv_test_{uuid.uuid4().hex[:12]}"
    store: AnalyticsStore
    if request.param == "chdb":
        store = open_analytics_store(f"chdb://{chdb_dir}?database={database}")
    elif request.param == "clickhouse-connect-chdb":
        import clickhouse_connect

        client = clickhouse_connect.get_client(interface="chdb", path=str(chdb_dir))
        store = ClickHouseAnalyticsStore(client, database)
    else:
        parts = urlsplit(CLICKHOUSE_URL)
        store = open_analytics_store(urlunsplit(parts._replace(path=f"/{database}")))
    try:
        yield store
    finally:
        try:
            store.execute(f"DROP DATABASE IF EXISTS {database}")
        finally:
            store.close()


@pytest.fixture
def store(bare_store: AnalyticsStore) -> AnalyticsStore:
    """A store with the packaged schema applied."""
    apply_migrations(bare_store)
    return bare_store


def detections(rows: int, seed: int = 0, frame0: int = 0) -> dict[str, np.ndarray]:
    """Detection columns without the slice keys (what `replace_slice` takes)."""
    rng = np.random.default_rng(seed)
    return {
        "frame": frame0 + np.arange(rows, dtype=np.uint32) // 4,
        "class_id": rng.integers(0, 3, rows).astype(np.uint8),
        "score": rng.random(rows, dtype=np.float32),
        "x1": rng.random(rows, dtype=np.float32) * 7680,
        "y1": rng.random(rows, dtype=np.float32) * 2160,
        "x2": rng.random(rows, dtype=np.float32) * 7680,
        "y2": rng.random(rows, dtype=np.float32) * 2160,
        "pitch_x": rng.random(rows, dtype=np.float32) * 105,
        "pitch_y": rng.random(rows, dtype=np.float32) * 68,
    }


def full_detections(
    rows: int, org: str = ORG, match: str = MATCH, chunk: int = 0
) -> dict[str, np.ndarray]:
    """Detection columns including the slice keys (what `insert` takes)."""
    return {
        "organization_id": np.full(rows, org, dtype=object),
        "match_id": np.full(rows, match, dtype=object),
        "revision": np.ones(rows, dtype=np.uint32),
        "chunk": np.full(rows, chunk, dtype=np.uint32),
        **detections(rows),
    }


def count(store: AnalyticsStore, table: str, where: str = "1", **parameters: object) -> int:
    result = store.query_numpy(f"SELECT count() AS n FROM {table} WHERE {where}", parameters)
    return int(result["n"][0])


def write_migration(folder: Path, name: str, sql: str) -> Path:
    path = folder / name
    path.write_text(sql, encoding="utf-8")
    return path


# -- migrations ---------------------------------------------------------------------------


def test_migrations_apply_in_order_and_are_recorded(
    bare_store: AnalyticsStore, tmp_path: Path
) -> None:
    # 0002 needs 0001's table and 0003 needs 0002's column: any other order fails.
    write_migration(
        tmp_path, "0002_add_note.sql", "ALTER TABLE items ADD COLUMN IF NOT EXISTS note String;"
    )
    write_migration(
        tmp_path,
        "0001_items.sql",
        "-- first; with a semicolon in a comment\n"
        "CREATE TABLE IF NOT EXISTS items (id UInt32) ENGINE = MergeTree ORDER BY id;",
    )
    write_migration(
        tmp_path,
        "0003_seed.sql",
        "INSERT INTO items (id, note) SELECT 1, 'a;b';\n/* two statements */\n"
        "INSERT INTO items (id, note) SELECT 2, 'it''s';\n",
    )

    applied = apply_migrations(bare_store, load_migrations(tmp_path))

    assert [m.version for m in applied] == [1, 2, 3]
    recorded = bare_store.query_arrow(
        "SELECT version, name, checksum, applied_at FROM schema_migrations ORDER BY version"
    ).to_pylist()
    assert [(r["version"], r["name"]) for r in recorded] == [
        (1, "items"),
        (2, "add_note"),
        (3, "seed"),
    ]
    assert [r["checksum"] for r in recorded] == [m.checksum for m in applied]
    assert all(r["applied_at"] is not None for r in recorded)
    notes = bare_store.query_numpy("SELECT note FROM items ORDER BY id")["note"]
    assert notes.tolist() == ["a;b", "it's"]


def test_migrations_rerun_applies_nothing(store: AnalyticsStore) -> None:
    assert apply_migrations(store) == []
    versions = store.query_numpy("SELECT version FROM schema_migrations")["version"]
    assert sorted(versions.tolist()) == [m.version for m in load_migrations()]


def test_packaged_schema_is_tenant_first_with_ttl(store: AnalyticsStore) -> None:
    tables = store.query_arrow(
        "SELECT name, sorting_key, engine_full FROM system.tables"
        " WHERE database = currentDatabase() ORDER BY name"
    ).to_pylist()
    by_name = {t["name"]: t for t in tables}
    for table in SLICE_TABLES:
        assert by_name[table]["sorting_key"].startswith("organization_id, match_id, revision")
        assert "TTL ingested_at + toIntervalDay(90)" in by_name[table]["engine_full"]


def test_tampered_migration_is_refused(bare_store: AnalyticsStore, tmp_path: Path) -> None:
    path = write_migration(
        tmp_path,
        "0001_items.sql",
        "CREATE TABLE IF NOT EXISTS items (id UInt32) ENGINE = MergeTree ORDER BY id;",
    )
    apply_migrations(bare_store, load_migrations(tmp_path))
    path.write_text(path.read_text() + "\n-- edited later\n", encoding="utf-8")

    with pytest.raises(MigrationError, match="changed after it was applied"):
        apply_migrations(bare_store, load_migrations(tmp_path))


def test_unknown_or_out_of_order_migrations_are_refused(
    bare_store: AnalyticsStore, tmp_path: Path
) -> None:
    ddl = "CREATE TABLE IF NOT EXISTS t{n} (id UInt32) ENGINE = MergeTree ORDER BY id;"
    write_migration(tmp_path, "0002_second.sql", ddl.format(n=2))
    apply_migrations(bare_store, load_migrations(tmp_path))

    write_migration(tmp_path, "0001_late.sql", ddl.format(n=1))
    with pytest.raises(MigrationError, match="already applied"):
        apply_migrations(bare_store, load_migrations(tmp_path))

    (tmp_path / "0001_late.sql").unlink()
    (tmp_path / "0002_second.sql").unlink()
    with pytest.raises(MigrationError, match="newer code"):
        apply_migrations(bare_store, load_migrations(tmp_path))


def test_split_statements_respects_quotes_and_comments() -> None:
    sql = "SELECT ';' -- a; b\n; SELECT 'a\\';' /* ; */ ;;\n SELECT `x;y`"
    assert split_statements(sql) == ["SELECT ';'", "SELECT 'a\\';'", "SELECT `x;y`"]


# -- inserts and queries --------------------------------------------------------------------


def test_insert_numpy_and_query_numpy(store: AnalyticsStore) -> None:
    data = full_detections(1000)

    assert store.insert("detections", data) == 1000

    result = store.query_numpy(
        "SELECT frame, class_id, score FROM detections"
        " WHERE organization_id = {org:String} AND match_id = {match:String}"
        " ORDER BY frame, x1",
        {"org": ORG, "match": MATCH},
    )
    order = np.lexsort((data["x1"], data["frame"]))
    np.testing.assert_array_equal(result["frame"], data["frame"][order])
    np.testing.assert_array_equal(result["class_id"], data["class_id"][order])
    np.testing.assert_array_equal(result["score"], data["score"][order])
    assert result["score"].dtype == np.float32


def test_insert_arrow_and_query_arrow(store: AnalyticsStore) -> None:
    rows = 500
    table = pa.table(
        {
            "organization_id": pa.array([ORG] * rows),
            "match_id": pa.array([MATCH] * rows),
            "revision": pa.array(np.ones(rows, dtype=np.int64)),  # converted to UInt32
            "chunk": pa.array(np.zeros(rows, dtype=np.uint32)),
            "frame": pa.array(np.arange(rows, dtype=np.uint32)),
            "track_id": pa.array(np.arange(rows, dtype=np.uint32) % 22),
            "team": pa.array((np.arange(rows) % 3 - 1).astype(np.int8)),
            "pitch_x": pa.array(np.linspace(0, 105, rows, dtype=np.float32)),
            "pitch_y": pa.array(np.linspace(0, 68, rows, dtype=np.float32)),
            "speed": pa.array(np.full(rows, 3.5, dtype=np.float32)),
        }
    )

    assert store.insert("track_points", table) == rows

    result = store.query_arrow(
        "SELECT track_id, count() AS frames, avg(speed) AS speed FROM track_points"
        " WHERE organization_id = {org:String} AND frame BETWEEN {start:UInt32} AND {stop:UInt32}"
        " GROUP BY track_id ORDER BY track_id",
        {"org": ORG, "start": 0, "stop": 219},
    )
    assert isinstance(result, pa.Table)
    assert result.column_names == ["track_id", "frames", "speed"]
    assert result.column("track_id").to_pylist() == list(range(22))
    assert result.column("frames").to_pylist() == [10] * 22
    assert result.column("speed").to_pylist() == pytest.approx([3.5] * 22)


def test_parameters_are_bound_not_spliced(store: AnalyticsStore) -> None:
    hostile = "o'rg\\'); DROP TABLE detections; --"
    store.replace_slice("detections", hostile, MATCH, 1, 0, detections(10))
    store.replace_slice("detections", ORG, MATCH, 1, 0, detections(5))

    result = store.query_numpy(
        "SELECT organization_id, count() AS n FROM detections"
        " WHERE organization_id = {org:String} GROUP BY organization_id",
        {"org": hostile},
    )

    assert result["organization_id"].tolist() == [hostile]  # stored and matched verbatim
    assert result["n"].tolist() == [10]
    assert count(store, "detections") == 15  # the table is still there, nothing else matched


def test_bad_sql_raises_query_error(store: AnalyticsStore) -> None:
    with pytest.raises(AnalyticsQueryError):
        store.query_arrow("SELECT * FROM no_such_table")
    with pytest.raises(ValueError, match="identifier"):
        store.insert("detections; DROP TABLE x", full_detections(1))


def test_million_rows_insert(store: AnalyticsStore) -> None:
    rows = 1_000_000

    assert store.replace_slice("detections", ORG, MATCH, 1, 0, detections(rows)) == rows

    assert count(store, "detections", "organization_id = {org:String}", org=ORG) == rows


# -- slices, tenants, cleanup ---------------------------------------------------------------


def test_replace_slice_twice_leaves_one_copy_and_other_chunks(store: AnalyticsStore) -> None:
    store.replace_slice("detections", ORG, MATCH, 1, 0, detections(100, seed=1))
    store.replace_slice("detections", ORG, MATCH, 1, 1, detections(70, seed=2, frame0=1000))
    store.replace_slice("detections", ORG, MATCH, 2, 0, detections(30, seed=3))

    # A retried activity writes chunk 0 of revision 1 again, with new content.
    replacement = detections(80, seed=4)
    store.replace_slice("detections", ORG, MATCH, 1, 0, replacement)
    store.replace_slice("detections", ORG, MATCH, 1, 0, replacement)

    counts = store.query_numpy(
        "SELECT revision, chunk, count() AS n FROM detections"
        " WHERE organization_id = {org:String} AND match_id = {match:String}"
        " GROUP BY revision, chunk ORDER BY revision, chunk",
        {"org": ORG, "match": MATCH},
    )
    assert counts["revision"].tolist() == [1, 1, 2]
    assert counts["chunk"].tolist() == [0, 1, 0]
    assert counts["n"].tolist() == [80, 70, 30]
    scores = store.query_numpy(
        "SELECT score FROM detections WHERE revision = 1 AND chunk = 0 ORDER BY frame, x1"
    )["score"]
    order = np.lexsort((replacement["x1"], replacement["frame"]))
    np.testing.assert_array_equal(scores, replacement["score"][order])


def test_replace_slice_with_no_rows_empties_the_slice(store: AnalyticsStore) -> None:
    store.replace_slice("player_stats", ORG, MATCH, 1, 3, {"track_id": np.arange(5)})

    assert store.replace_slice("player_stats", ORG, MATCH, 1, 3, {"track_id": np.arange(0)}) == 0

    assert count(store, "player_stats") == 0


def test_replace_slice_validates_its_input(store: AnalyticsStore) -> None:
    with pytest.raises(ValueError, match="replace_slice works on"):
        store.replace_slice("schema_migrations", ORG, MATCH, 1, 0, {"version": np.arange(1)})
    with pytest.raises(ValueError, match="come from the arguments"):
        store.replace_slice("detections", ORG, MATCH, 1, 0, full_detections(3))
    with pytest.raises(ValueError, match="expected 3"):
        store.replace_slice(
            "track_points", ORG, MATCH, 1, 0, {"frame": np.arange(3), "track_id": np.arange(4)}
        )


def test_queries_filter_by_tenant(store: AnalyticsStore) -> None:
    # Two organizations may use the same match id; neither sees the other's rows.
    store.replace_slice("detections", "org-a", MATCH, 1, 0, detections(40))
    store.replace_slice("detections", "org-b", MATCH, 1, 0, detections(60))

    for org, expected in [("org-a", 40), ("org-b", 60), ("org-c", 0)]:
        where = "organization_id = {org:String} AND match_id = {match:String}"
        assert count(store, "detections", where, org=org, match=MATCH) == expected

    store.delete_match("org-a", MATCH)
    assert count(store, "detections", "organization_id = {org:String}", org="org-b") == 60


def test_delete_match_by_revision_and_whole(store: AnalyticsStore) -> None:
    for revision in (1, 2):
        store.replace_slice("detections", ORG, MATCH, revision, 0, detections(10))
        store.replace_slice(
            "track_points",
            ORG,
            MATCH,
            revision,
            0,
            {"frame": np.arange(7), "track_id": np.arange(7)},
        )
        store.replace_slice("player_stats", ORG, MATCH, revision, 0, {"track_id": np.arange(3)})
    store.replace_slice("detections", ORG, "match-2", 1, 0, detections(5))

    store.delete_match(ORG, MATCH, revision=1)

    for table, rows in [("detections", 10), ("track_points", 7), ("player_stats", 3)]:
        assert count(store, table, "match_id = {m:String}", m=MATCH) == rows
        assert count(store, table, "match_id = {m:String} AND revision = 1", m=MATCH) == 0

    store.delete_match(ORG, MATCH)

    for table in SLICE_TABLES:
        assert count(store, table, "match_id = {m:String}", m=MATCH) == 0
    assert count(store, "detections", "match_id = {m:String}", m="match-2") == 5


def test_check_and_close(bare_store: AnalyticsStore) -> None:
    bare_store.check()
    other = bare_store.query_numpy("SELECT currentDatabase() AS db")["db"][0]
    assert other == bare_store.database


# -- the URL factory ------------------------------------------------------------------------


def test_unknown_scheme_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown analytics URL scheme 'postgres'"):
        open_analytics_store("postgres://localhost/db")
    with pytest.raises(ValueError, match="no scheme"):
        open_analytics_store("/just/a/path")
    with pytest.raises(ValueError, match="absolute path"):
        open_analytics_store("chdb://relative/dir")
    with pytest.raises(ValueError, match="unknown option"):
        open_analytics_store("chdb:///abs/dir?path=x")


def test_chdb_memory_url_and_closed_store(tmp_path: Path) -> None:
    store = open_analytics_store("chdb://:memory:?database=pv_memory", migrate=True)
    store.replace_slice("detections", ORG, MATCH, 1, 0, detections(3))
    assert count(store, "detections") == 3
    store.close()
    store.close()  # idempotent

    with pytest.raises(AnalyticsUnavailableError):
        store.check()


def test_chdb_refuses_a_second_path_while_one_is_open(chdb_dir: Path, tmp_path: Path) -> None:
    with (
        open_analytics_store(f"chdb://{chdb_dir}?database=pv_first"),
        pytest.raises(AnalyticsUnavailableError, match="one database path per process"),
    ):
        open_analytics_store(f"chdb://{tmp_path}")
    # Once the first path is closed the engine can move.
    with open_analytics_store(f"chdb://{tmp_path}") as store:
        store.check()


def test_unreachable_clickhouse_is_unavailable() -> None:
    with pytest.raises(AnalyticsUnavailableError, match="cannot reach ClickHouse"):
        open_analytics_store("clickhouse://user:secret@127.0.0.1:1/analytics")


def test_one_store_is_shared_by_threads(store: AnalyticsStore) -> None:
    # Activities run in a thread pool and share the worker's store.
    def write(chunk: int) -> int:
        return store.replace_slice(
            "detections", ORG, MATCH, 1, chunk, detections(1000 + chunk, seed=chunk)
        )

    with ThreadPoolExecutor(max_workers=4) as pool:
        written = list(pool.map(write, range(8)))

    counts = store.query_numpy(
        "SELECT chunk, count() AS n FROM detections GROUP BY chunk ORDER BY chunk"
    )
    assert counts["n"].tolist() == written == [1000 + chunk for chunk in range(8)]


def test_ball_tables_are_replaceable_slices(store: AnalyticsStore) -> None:
    ball = {
        "frame": np.arange(3, dtype=np.uint32),
        "pitch_x": np.array([50.0, np.nan, 51.0], np.float32),
        "pitch_y": np.array([30.0, np.nan, 31.0], np.float32),
        "height_m": np.array([0.11, np.nan, 2.5], np.float32),
        "visible": np.array([1, 0, 1], np.uint8),
        "observed": np.array([1, 0, 0], np.uint8),
        "in_play": np.array([1, 0, 1], np.uint8),
        "confidence": np.array([0.9, 0.0, 0.5], np.float32),
    }
    possession = {"team": np.array([0, 1, -1, -2], np.int8), "frames": np.arange(1, 5)}
    for _ in range(2):  # a retried chunk leaves one copy
        assert store.replace_slice("ball_points", ORG, MATCH, 1, 0, ball) == 3
        assert store.replace_slice("team_possession", ORG, MATCH, 1, 0, possession) == 4
    rows = store.query_numpy("SELECT frame, pitch_x, height_m FROM ball_points ORDER BY frame")
    assert rows["frame"].tolist() == [0, 1, 2]
    assert np.isnan(rows["pitch_x"][1]) and rows["height_m"][2] == pytest.approx(2.5)
    rows = store.query_numpy("SELECT team, frames FROM team_possession ORDER BY team")
    assert rows["team"].tolist() == [-2, -1, 0, 1] and rows["frames"].tolist() == [4, 3, 1, 2]

    store.delete_match(ORG, MATCH)

    assert count(store, "ball_points") == 0 and count(store, "team_possession") == 0


async def test_a_superseded_attempt_cannot_replace_a_slice(
    store: AnalyticsStore, tmp_path: Path
) -> None:
    """The DELETE-then-INSERT of a stale attempt (frozen worker, woken after its activity was
    retried elsewhere) is refused, so it can neither remove nor duplicate the newer rows."""
    objects = open_object_store(f"file://{tmp_path}", secret=b"s" * 32, public_base_url="http://t")
    key = fence_key(ORG, MATCH, 1, "wf", "track")
    stale = await claim_attempt(objects, key, attempt=1)
    newer = await claim_attempt(objects, key, attempt=2)
    with attempt_claimed(newer):
        await asyncio.to_thread(
            store.replace_slice, "detections", ORG, MATCH, 1, 0, detections(40, seed=1)
        )

    with attempt_claimed(stale), pytest.raises(StaleAttempt):
        await asyncio.to_thread(
            store.replace_slice, "detections", ORG, MATCH, 1, 0, detections(40, seed=2)
        )

    assert count(store, "detections") == 40


def test_a_slice_whose_insert_was_lost_is_written_again(
    store: AnalyticsStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The chaos suite saw a slice left empty after a SIGKILL and a retry; replace_slice reads
    the slice back and writes it again until it holds exactly the rows given."""
    real_insert = store.insert_arrow
    calls: list[str] = []

    def lose_the_first_insert(table: str, data: Any) -> None:
        calls.append(table)
        if len(calls) > 1:
            real_insert(table, data)

    monkeypatch.setattr(store, "insert_arrow", lose_the_first_insert)

    assert store.replace_slice("detections", ORG, MATCH, 1, 0, detections(30, seed=5)) == 30

    assert len(calls) == 2
    assert count(store, "detections") == 30


def test_a_slice_that_never_holds_its_rows_is_an_error(
    store: AnalyticsStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store, "insert_arrow", lambda table, data: None)

    with pytest.raises(AnalyticsError, match="holds 0 rows after writing 30"):
        store.replace_slice("detections", ORG, MATCH, 1, 0, detections(30, seed=5))
