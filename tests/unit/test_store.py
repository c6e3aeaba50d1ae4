from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from telewatch.core.errors import NotFoundError, ValidationError
from telewatch.store import repo
from telewatch.store.db import Store, StoreError
from telewatch.store.migrations import MIGRATIONS, Migration


def _series(n: int = 10, start: str = "2024-01-01") -> pd.Series:
    idx = pd.date_range(start, periods=n, freq="1min", tz="UTC")
    return pd.Series(np.arange(n, dtype=float), index=idx)


def test_migrations_are_applied_once_and_recorded(tmp_path: Path) -> None:
    path = tmp_path / "s.duckdb"
    with Store(path) as s:
        assert s.schema_version() == MIGRATIONS[-1].version
    with Store(path) as s:  # reopening applies nothing again
        assert s.migrate(MIGRATIONS) == []
        rows = s.cursor().execute("SELECT version FROM schema_migrations ORDER BY version").fetchall()
        assert [r[0] for r in rows] == [m.version for m in MIGRATIONS]


def test_new_migration_is_applied_on_open(tmp_path: Path) -> None:
    path = tmp_path / "s.duckdb"
    Store(path).close()
    extra = [*MIGRATIONS, Migration(MIGRATIONS[-1].version + 1, "extra", "CREATE TABLE extra_t (x INTEGER);")]
    with Store(path, migrations=extra) as s:
        assert s.schema_version() == extra[-1].version
        s.cursor().execute("INSERT INTO extra_t VALUES (1)")


def test_store_newer_than_code_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.duckdb"
    extra = [*MIGRATIONS, Migration(99, "future", "SELECT 1;")]
    Store(path, migrations=extra).close()
    with pytest.raises(StoreError, match="newer"):
        Store(path)


def test_failed_migration_leaves_nothing(tmp_path: Path) -> None:
    path = tmp_path / "s.duckdb"
    Store(path).close()
    bad = [
        *MIGRATIONS,
        Migration(MIGRATIONS[-1].version + 1, "bad", "CREATE TABLE half (x INT); SELECT nope;"),
    ]
    with pytest.raises(Exception, match="nope"):
        Store(path, migrations=bad)
    with Store(path) as s:
        tables = {
            r[0] for r in s.cursor().execute("SELECT table_name FROM information_schema.tables").fetchall()
        }
        assert "half" not in tables
        assert s.schema_version() == MIGRATIONS[-1].version


def test_points_upsert_is_idempotent_and_keeps_missing(store: Store) -> None:
    cur = store.cursor()
    mid = repo.upsert_metric(cur, name="cpu", labels={"host": "a"}, unit="%")
    s = _series()
    s.iloc[3] = np.nan
    repo.write_points(cur, mid, s)
    repo.write_points(cur, mid, s)
    (m,) = repo.list_metrics(cur)
    assert (m.points, m.missing) == (9, 1)
    back = repo.read_series(cur, mid)
    assert back.index.equals(s.index)
    np.testing.assert_array_equal(back.to_numpy(), s.to_numpy())
    # a later value overwrites
    repo.write_points(cur, mid, pd.Series([42.0], index=s.index[:1]))
    assert repo.read_series(cur, mid).iloc[0] == 42.0


def test_points_and_scores_stay_unique_without_an_index(store: Store) -> None:
    cur = store.cursor()
    a = repo.upsert_metric(cur, name="cpu", labels={})
    b = repo.upsert_metric(cur, name="mem", labels={})
    repo.write_points(cur, a, _series(10))
    repo.write_points(cur, b, _series(10))
    # overlapping writes: half old, half new; a duplicated stamp in the input keeps its last value
    idx = _series(10).index[5:].append(pd.date_range("2024-01-01 00:10", periods=5, freq="1min", tz="UTC"))
    twice = pd.Series(np.r_[np.full(10, 7.0), 8.0], index=idx.append(idx[-1:]))
    repo.write_points(cur, a, twice)
    rows = cur.execute(
        "SELECT metric_id, count(*), count(DISTINCT ts), max(value) FROM points GROUP BY ALL ORDER BY 1"
    )
    assert rows.fetchall() == [(a, 15, 15, 8.0), (b, 10, 10, 9.0)]
    assert repo.read_series(cur, a).tolist() == [0.0, 1.0, 2.0, 3.0, 4.0, *[7.0] * 9, 8.0]
    frame = pd.DataFrame(
        {
            "metric_id": [a, a, b],
            "detector": ["z", "z", "z"],
            "ts": idx[:3].tz_localize(None),
            "score": [1.0, np.nan, 3.0],
        }
    )
    repo.replace_scores(cur, frame)
    repo.replace_scores(cur, frame.assign(score=[5.0, 6.0, 7.0], detector=["z", "bands", "z"]))
    got = cur.execute("SELECT metric_id, detector, score FROM scores ORDER BY ALL").fetchall()
    assert got == [(a, "bands", 6.0), (a, "z", 5.0), (a, "z", None), (b, "z", 7.0)]
    # no index is kept over the points or the scores (migration 0010)
    assert cur.execute(
        "SELECT count(*) FROM duckdb_constraints() WHERE table_name IN ('points', 'scores')"
        " AND constraint_type IN ('PRIMARY KEY', 'UNIQUE')"
    ).fetchone() == (0,)


def test_concurrent_writers_of_one_minute_leave_it_once(store: Store) -> None:
    mid = repo.upsert_metric(store.cursor(), name="cpu", labels={})
    minute = pd.Series([1.0], index=pd.DatetimeIndex(["2024-01-01 00:00"], tz="UTC"))

    def count() -> int:
        row = store.cursor().execute("SELECT count(*) FROM points WHERE metric_id = ?", [mid]).fetchone()
        return int(row[0]) if row else -1

    # why the lock exists: two open transactions replacing the same new minute both find nothing
    # to delete and both append (no unique index since migration 0010)
    one, two = store._con.cursor(), store._con.cursor()
    for cur in (one, two):
        cur.execute("BEGIN TRANSACTION")
        repo.write_points(cur, mid, minute)
    one.execute("COMMIT")
    two.execute("COMMIT")
    assert count() == 2
    store.cursor().execute("DELETE FROM points")

    # in store.transaction(series=True), the second writer begins after the first has committed
    first_wrote, release = threading.Event(), threading.Event()
    second_began, second_wrote = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def first() -> None:
        try:
            with store.transaction(series=True) as tx:
                repo.write_points(tx, mid, minute)
                first_wrote.set()
                assert release.wait(10)
        except BaseException as exc:  # reported below
            errors.append(exc)

    def second() -> None:
        try:
            with store.transaction(series=True) as tx:
                second_began.set()
                repo.write_points(tx, mid, minute * 2)
                second_wrote.set()
        except BaseException as exc:
            errors.append(exc)

    a, b = threading.Thread(target=first), threading.Thread(target=second)
    a.start()
    assert first_wrote.wait(10)
    b.start()
    assert not second_began.wait(0.5), "the second writer began before the first transaction ended"
    with store.transaction() as tx:  # other transactions do not wait
        tx.execute("UPDATE metrics SET unit = 'ms' WHERE id = ?", [mid])
    release.set()
    a.join(10)
    b.join(10)
    assert not errors
    assert second_wrote.is_set()
    assert count() == 1
    assert repo.read_series(store.cursor(), mid).tolist() == [2.0]

    # a rolled-back writer lets the next one in
    def write_then_fail() -> None:
        with store.transaction(series=True) as tx:
            repo.write_points(tx, mid, minute * 3)
            raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError):
        write_then_fail()
    third = threading.Thread(target=lambda: _write_in_series_transaction(store, mid, minute * 4))
    third.start()
    third.join(10)
    assert not third.is_alive()
    assert repo.read_series(store.cursor(), mid).tolist() == [4.0]

    # a writer that forgot series=True is refused, and nothing of its transaction is kept
    def forget_series() -> None:
        with store.transaction() as tx:
            repo.upsert_metric(tx, name="mem", labels={})
            repo.write_points(tx, mid, minute * 5)

    with pytest.raises(StoreError, match="series=True"):
        forget_series()
    assert [m.name for m in repo.list_metrics(store.cursor())] == ["cpu"]
    with store.transaction(), pytest.raises(StoreError, match="already open"), store.transaction():
        pass


def _write_in_series_transaction(store: Store, metric_id: int, values: pd.Series) -> None:
    with store.transaction(series=True) as tx:
        repo.write_points(tx, metric_id, values)


def test_migration_0010_keeps_every_point_and_score(tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    before = [m for m in MIGRATIONS if m.version < 10]
    with Store(path, migrations=before) as old:
        cur = old.cursor()
        mid = repo.upsert_metric(cur, name="cpu", labels={})
        cur.execute(
            "INSERT INTO points SELECT ?, TIMESTAMP '2024-01-01' + to_minutes(k), CASE WHEN k % 7 = 0 THEN NULL"
            " ELSE k END FROM range(500) t(k)",
            [mid],
        )
        cur.execute(
            "INSERT INTO scores SELECT ?, 'z', TIMESTAMP '2024-01-01' + to_minutes(k), k / 2 FROM range(300) t(k)",
            [mid],
        )
        points = cur.execute("SELECT * FROM points ORDER BY ts").fetchall()
        scores = cur.execute("SELECT * FROM scores ORDER BY ts").fetchall()
    with Store(path) as new:
        cur = new.cursor()
        assert new.schema_version() >= 10
        assert cur.execute("SELECT * FROM points ORDER BY ts").fetchall() == points
        assert cur.execute("SELECT * FROM scores ORDER BY ts").fetchall() == scores


def test_metric_identity_is_name_plus_labels(store: Store) -> None:
    cur = store.cursor()
    a = repo.upsert_metric(cur, name="cpu", labels={"host": "a"})
    b = repo.upsert_metric(cur, name="cpu", labels={"host": "b"})
    assert a != b
    assert repo.upsert_metric(cur, name="cpu", labels={"host": "a"}, owner="@ops") == a
    assert repo.get_metric(cur, "cpu", {"host": "a"}).owner == "@ops"
    with pytest.raises(ValidationError, match="2 slices"):
        repo.get_metric(cur, "cpu")
    with pytest.raises(NotFoundError):
        repo.get_metric(cur, "nope")
    assert [m.id for m in repo.list_metrics(cur, selector={"host": "b"})] == [b]


def test_resampling_runs_in_the_store_and_keeps_gaps(store: Store) -> None:
    cur = store.cursor()
    mid = repo.upsert_metric(cur, name="x")
    s = pd.concat([_series(10), _series(5, "2024-01-01 01:00")])
    repo.write_points(cur, mid, s)
    out = repo.read_series(cur, mid, step=pd.Timedelta("5min"))
    assert list(out.to_numpy()) == [2.0, 7.0, 2.0]  # the empty hour in between stays a gap
    window = repo.read_series(cur, mid, start="2024-01-01 00:02", end="2024-01-01 00:04")
    assert list(window.to_numpy()) == [2.0, 3.0]


def test_hostile_label_selector_is_bound_not_executed(store: Store) -> None:
    cur = store.cursor()
    repo.upsert_metric(cur, name="x", labels={"a": "1"})
    evil = {"a') OR 1=1; DROP TABLE metrics; --": "1"}
    assert repo.list_metrics(cur, selector=evil) == []
    assert len(repo.list_metrics(cur)) == 1


def test_transaction_rolls_back_everything(store: Store) -> None:
    def write_then_fail() -> None:
        with store.transaction(series=True) as tx:
            mid = repo.upsert_metric(tx, name="x")
            repo.write_points(tx, mid, _series())
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        write_then_fail()
    assert repo.list_metrics(store.cursor()) == []


def test_second_process_gets_a_clear_error(tmp_path: Path) -> None:
    import subprocess
    import sys

    path = tmp_path / "s.duckdb"
    with Store(path):
        code = (
            "import sys\nfrom telewatch.store.db import Store, StoreError\n"
            f"try:\n    Store({str(path)!r})\nexcept StoreError as e:\n    print(e); sys.exit(3)\n"
        )
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 3, proc.stderr
    assert "in use by another telewatch process" in proc.stdout


def test_every_setting_is_documented() -> None:
    from telewatch.settings import Settings

    doc = (Path(__file__).resolve().parents[2] / "docs" / "configuration.md").read_text()
    for name in Settings.model_fields:
        assert f"`TELEWATCH_{name.upper()}`" in doc, name
