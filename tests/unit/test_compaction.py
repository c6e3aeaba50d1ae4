"""Compaction: old days of points and scores rewritten in (metric, time) order, nothing lost."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from telewatch.services.compaction import compact_store, compacted_until
from telewatch.services.retention import RetentionPolicy, apply_retention
from telewatch.store import repo
from telewatch.store.db import Store

START = pd.Timestamp("2026-01-01", tz="UTC")
NAMES = ("cpu", "mem", "rx")
KEEP = pd.Timedelta(days=1)  # days that ended a day ago are compacted (the default keeps 4 days)


def fill(store: Store, *, days: int = 3) -> list[int]:
    """Time-major writes, an hour of every metric at a time, as a monitor's ticks leave a store."""
    rng = np.random.default_rng(1)
    cur = store.cursor()
    ids = [repo.upsert_metric(cur, name=n, labels={}) for n in NAMES]
    for hour in range(days * 24):
        index = pd.date_range(START + pd.Timedelta(hours=hour), periods=60, freq="1min")
        with store.transaction(series=True) as tx:
            for mid in ids:
                values = rng.normal(100, 5, 60).round(2)
                values[rng.random(60) < 0.05] = np.nan
                repo.write_points(tx, mid, pd.Series(values, index=index))
                for detector in ("z", "bands"):
                    frame = pd.DataFrame(
                        {
                            "metric_id": np.full(60, mid, dtype="int32"),
                            "detector": detector,
                            "ts": index.tz_localize(None).astype("datetime64[us]"),
                            "score": rng.random(60),
                        }
                    )
                    repo.replace_scores(tx, frame)
    return ids


def rows(store: Store, table: str) -> list[tuple[object, ...]]:
    return store.cursor().execute(f"SELECT * FROM {table} ORDER BY ALL").fetchall()


def physical(store: Store, table: str, start: str, end: str) -> list[tuple[object, ...]]:
    key = "metric_id, detector, ts" if table == "scores" else "metric_id, ts"
    return (
        store.cursor()
        .execute(f"SELECT {key} FROM {table} WHERE ts >= ? AND ts < ? ORDER BY rowid", [start, end])
        .fetchall()
    )


def test_old_days_are_rewritten_by_metric_and_nothing_changes(store: Store) -> None:
    ids = fill(store)
    before = {t: rows(store, t) for t in ("points", "scores")}
    series = {mid: repo.read_series(store.cursor(), mid) for mid in ids}
    last_day_order = physical(store, "points", "2026-01-03", "2026-01-04")

    report = compact_store(
        store, keep_recent=KEEP, now="2026-01-04 06:00"
    )  # days ending a day ago: 01-01 and 01-02
    assert report.days == {"points": 2, "scores": 2}
    assert report.rows == {"points": 2 * 1440 * 3, "scores": 2 * 1440 * 3 * 2}
    assert {t: rows(store, t) for t in ("points", "scores")} == before
    for mid in ids:
        pd.testing.assert_series_equal(repo.read_series(store.cursor(), mid), series[mid])
    for table in ("points", "scores"):
        assert compacted_until(store, table) == pd.Timestamp("2026-01-03", tz="UTC")
        for day in ("2026-01-01", "2026-01-02"):
            order = physical(store, table, day, str(pd.Timestamp(day) + pd.Timedelta(days=1)))
            assert order == sorted(order)  # by metric (and detector), then time
            assert order != sorted(order, key=lambda r: r[-1])  # no longer time-major
    assert physical(store, "points", "2026-01-03", "2026-01-04") == last_day_order  # not finished: untouched

    again = compact_store(store, keep_recent=KEEP, now="2026-01-04 06:00")
    assert again.total_rows == 0
    # a late point for a compacted day is stored and read like any other; the day is not redone
    late = pd.Series([7.0], index=pd.DatetimeIndex(["2026-01-01 05:30:30"], tz="UTC"))
    with store.transaction(series=True) as tx:
        repo.write_points(tx, ids[0], late)
    assert repo.read_series(store.cursor(), ids[0]).loc["2026-01-01 05:30:30"] == 7.0
    later = compact_store(store, keep_recent=KEEP, now="2026-01-05 06:00")
    assert later.days == {"points": 1, "scores": 1}  # 01-03 only
    assert len(rows(store, "points")) == len(before["points"]) + 1


def test_days_per_pass_are_bounded_and_an_empty_store_has_nothing_to_do(store: Store) -> None:
    assert compact_store(store, keep_recent=KEEP, now="2026-02-01").until == {"points": None, "scores": None}
    fill(store, days=4)
    # by default the last 4 days stay time-ordered: the window scan of a recent window reads them
    assert compact_store(store, now="2026-01-06").days == {"points": 1, "scores": 1}  # 01-01 only
    store.cursor().execute("DELETE FROM store_compaction")
    first = compact_store(store, keep_recent=KEEP, now="2026-01-06", max_days=2, tables=("points",))
    assert first.days == {"points": 2}
    assert first.until["points"] == pd.Timestamp("2026-01-03", tz="UTC")
    second = compact_store(store, keep_recent=KEEP, now="2026-01-06", max_days=2, tables=("points",))
    assert second.days == {"points": 2}
    assert second.until["points"] == pd.Timestamp("2026-01-05", tz="UTC")
    assert compact_store(store, keep_recent=KEEP, now="2026-01-06", tables=("points",)).days == {"points": 0}
    with pytest.raises(ValueError, match="no order known"):
        compact_store(store, keep_recent=KEEP, now="2026-01-06", tables=("metrics",))


def test_retention_compacts_and_the_policy_can_turn_it_off(store: Store) -> None:
    fill(store)
    before = rows(store, "points")
    off = apply_retention(store, now="2026-01-04 06:00", policy=RetentionPolicy(runs=pd.Timedelta(days=30)))
    assert off.compacted_days == 0
    assert compacted_until(store, "points") is None
    policy = RetentionPolicy(compact_after=pd.Timedelta(days=1))
    assert policy.enabled  # compaction alone makes the scheduler run the pass
    report = apply_retention(store, now="2026-01-04 06:00", policy=policy)
    assert report.compacted_days == 4
    assert report.compacted == {"points": 8640, "scores": 17280}
    assert report.total == 0  # nothing deleted
    assert rows(store, "points") == before
    assert apply_retention(store, now="2026-01-04 06:00", policy=policy, dry_run=True).compacted_days == 0


def test_a_compaction_killed_mid_day_leaves_the_day_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "tw.duckdb"
    with Store(path) as store:
        fill(store, days=2)
        before = rows(store, "points")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELEWATCH_")}
    env["TELEWATCH_CRASH_AT"] = "compact.after_insert"
    script = (
        "import sys; from telewatch.services.compaction import compact_store; from telewatch.store.db import Store\n"
        "from datetime import timedelta\n"
        "with Store(sys.argv[1]) as s: compact_store(s, now='2026-01-03 06:00', keep_recent=timedelta(days=1))\n"
    )
    done = subprocess.run([sys.executable, "-c", script, str(path)], env=env, timeout=120, check=False)
    assert done.returncode == -signal.SIGKILL
    with Store(path) as store:
        assert rows(store, "points") == before  # the appended copy went with the transaction
        assert compacted_until(store, "points") is None
        assert compact_store(store, keep_recent=KEEP, now="2026-01-03 06:00").days == {
            "points": 1,
            "scores": 1,
        }
        assert rows(store, "points") == before
