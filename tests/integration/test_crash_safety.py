"""Crash safety: SIGKILL a real ``telewatch`` process at named and random points of ingest, scoring and
alert delivery, in a loop; reopen the store each time and check it is consistent.

Kill points come from :mod:`telewatch.core.faults` (``TELEWATCH_CRASH_AT=name[#nth][+delay]``): named
points inside and around each transaction, and random delays after the work began (which land anywhere:
inside DuckDB, mid-commit, in the checkpoint at close). Iterations per kind: ``TELEWATCH_CRASH_ITERATIONS``
(default 16); the schedule is drawn from ``TELEWATCH_CRASH_SEED`` (default 11). Run with ``-s`` to see the
summary of each loop (kill points hit, processes killed, receiver-side duplicates).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from support.postgres import make_postgres
from support.webhook import WebhookReceiver
from telewatch.alerts.rules import sample_candidate
from telewatch.cli.app import app
from telewatch.services.alerting import deliver_outbox, load_alerting_config, submit_alerts
from telewatch.services.detection import detect_metrics
from telewatch.services.ingest import ingest_file
from telewatch.store.db import Store, StoreError
from telewatch.store.migrations import MIGRATIONS

pytestmark = pytest.mark.slow

ITERATIONS = int(os.environ.get("TELEWATCH_CRASH_ITERATIONS", "16"))
#: Seconds per kind (setup included) after which the loop stops early on a loaded machine, once
#: MIN_ITERATIONS ran: the first MIN_ITERATIONS of each schedule hit every named point and two random ones.
BUDGET_S = float(os.environ.get("TELEWATCH_CRASH_BUDGET_S", "70"))
MIN_ITERATIONS = 6
SEED = int(os.environ.get("TELEWATCH_CRASH_SEED", "11"))
LATEST = max(m.version for m in MIGRATIONS)
TELEWATCH = [
    sys.executable,
    "-c",
    "import sys; from telewatch.cli import main; sys.argv[0] = 'telewatch'; main()",
]
METRICS = [f"m{j}" for j in range(4)]
ROWS = 3000


# -- running and killing ------------------------------------------------------------------------
@dataclass
class Outcome:
    crash_at: str
    killed: bool
    returncode: int
    output: str


def run_telewatch(
    args: list[str], *, crash_at: str | None = None, kill_after: float | None = None
) -> Outcome:
    """Run ``telewatch ARGS`` in a child process; it kills itself at ``crash_at`` (TELEWATCH_CRASH_AT),
    or the test SIGKILLs it ``kill_after`` seconds after it started."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELEWATCH_")}
    env["NO_COLOR"] = "1"
    if crash_at:
        env["TELEWATCH_CRASH_AT"] = crash_at
    proc = subprocess.Popen([*TELEWATCH, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    if kill_after is not None:
        try:
            proc.wait(kill_after)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
    try:
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    text = out.decode(errors="replace") if out else ""
    label = crash_at or (f"wall-clock+{kill_after:.2f}s" if kill_after is not None else "no kill")
    return Outcome(label, proc.returncode == -signal.SIGKILL, proc.returncode, text)


def schedule(named: list[str], *, random_from: str, span: float, rng: np.random.Generator) -> list[str]:
    """ITERATIONS kill points: each named point (``#k`` variants included) in turn, every third one a
    random delay after ``random_from``."""
    out, i = [], 0
    for n in range(ITERATIONS):
        if n % 3 == 2:
            out.append(f"{random_from}+{rng.uniform(0.0, span):.3f}")
        else:
            out.append(named[i % len(named)])
            i += 1
    return out


class Budget:
    """Stops a kill loop once ``BUDGET_S`` is spent (never before ``minimum`` iterations)."""

    def __init__(self, minimum: int = MIN_ITERATIONS) -> None:
        self.deadline = time.monotonic() + BUDGET_S
        self.started = time.monotonic()
        self.minimum = minimum

    def spent(self, done: int) -> bool:
        return done >= self.minimum and time.monotonic() > self.deadline

    @property
    def seconds(self) -> float:
        return time.monotonic() - self.started


def copy_store(src: Path, dst: Path) -> Path:
    assert not Path(str(src) + ".wal").exists(), "the template store was not closed cleanly"
    shutil.copyfile(src, dst)
    return dst


def summary(kind: str, outcomes: list[Outcome], budget: Budget, extra: dict[str, Any] | None = None) -> None:
    points = Counter(o.crash_at.split("+")[0] + ("+random" if "+" in o.crash_at else "") for o in outcomes)
    killed = sum(o.killed for o in outcomes)
    print(
        f"\n[crash-safety] {kind}: {len(outcomes)}/{ITERATIONS} iterations in {budget.seconds:.0f} s, {killed} killed, "
        f"{len(outcomes) - killed} finished before the kill; points: {dict(sorted(points.items()))}"
        + (f"; {extra}" if extra else "")
    )


# -- data ---------------------------------------------------------------------------------------
def write_metrics_csv(path: Path, *, seed: int, names: list[str], rows: int = ROWS) -> Path:
    """A wide CSV of minute points with planted spikes and a few empty (missing) cells."""
    rng = np.random.default_rng(seed)
    index = pd.date_range("2026-01-01", periods=rows, freq="min")
    frame = pd.DataFrame({"timestamp": index.strftime("%Y-%m-%dT%H:%M:%SZ")})
    for name in names:
        values = 100 + 10 * np.sin(np.arange(rows) / 60) + rng.normal(0, 1, rows)
        for _ in range(3):
            at = int(rng.integers(200, rows - 50))
            values[at : at + int(rng.integers(3, 15))] += rng.choice([-1, 1]) * rng.uniform(15, 40)
        column = pd.Series(values.round(3))
        column[rng.random(rows) < 0.01] = np.nan
        frame[name] = column
    frame.to_csv(path, index=False)
    return path


def points_by_metric(store: Store, names: list[str]) -> dict[str, pd.DataFrame]:
    cur = store.cursor()
    out = {}
    for name in names:
        out[name] = cur.execute(
            "SELECT p.ts, p.value FROM points p JOIN metrics m ON m.id = p.metric_id WHERE m.name = ? ORDER BY p.ts",
            [name],
        ).df()
    return out


def open_checked(db: Path) -> Store:
    """The store opens after the kill (WAL replayed, no stale lock) with its schema intact."""
    store = Store(db)
    assert store.schema_version() == LATEST
    applied = [
        int(r[0])
        for r in store.cursor().execute("SELECT version FROM schema_migrations ORDER BY 1").fetchall()
    ]
    assert applied == [m.version for m in MIGRATIONS]
    return store


# -- ingest -------------------------------------------------------------------------------------
def test_ingest_survives_kills_all_or_nothing(tmp_path: Path) -> None:
    budget = Budget()
    rng = np.random.default_rng(SEED)
    data = write_metrics_csv(tmp_path / "metrics.csv", seed=1, names=METRICS)
    other = write_metrics_csv(tmp_path / "other.csv", seed=2, names=["other"], rows=500)
    template = tmp_path / "template.duckdb"
    with Store(template) as store:
        ingest_file(store, other)
        kept = points_by_metric(store, ["other"])["other"]
    with Store(tmp_path / "reference.duckdb") as store:
        ingest_file(store, data)
        expected = points_by_metric(store, METRICS)
    expected_points = sum(int(f["value"].notna().sum()) for f in expected.values())
    assert expected_points > 10_000

    kills = schedule(
        ["ingest.begin", "ingest.after_points", "ingest.before_commit", "ingest.after_commit"],
        random_from="ingest.begin",
        span=0.5,
        rng=rng,
    )
    outcomes: list[Outcome] = []
    states: Counter[str] = Counter()
    for n, crash_at in enumerate(kills):
        # the first two random slots start from no store at all and are killed on a wall-clock timer:
        # the kill may land in the migrations of the first open
        fresh = n in (2, 5)
        db = tmp_path / f"ingest-{n}.duckdb"
        if fresh:
            outcome = run_telewatch(["ingest", str(data), "--db", str(db)], kill_after=rng.uniform(0.8, 2.5))
            crash_at = outcome.crash_at
        else:
            copy_store(template, db)
            outcome = run_telewatch(["ingest", str(data), "--db", str(db)], crash_at=crash_at)
            if "+" not in crash_at:
                assert outcome.killed, f"{crash_at}: the process was not killed:\n{outcome.output}"
        outcomes.append(outcome)

        with open_checked(db) as store:
            got = points_by_metric(store, METRICS)
            present = {name for name, frame in got.items() if len(frame)}
            metric_rows = (
                store.cursor()
                .execute("SELECT count(*) FROM metrics WHERE list_contains(?, name)", [METRICS])
                .fetchone()
            )
            logs = (
                store.cursor()
                .execute("SELECT metrics, points FROM ingests WHERE source = ?", [str(data)])
                .fetchall()
            )
            if not fresh:
                assert points_by_metric(store, ["other"])["other"].equals(kept), "earlier data was damaged"
        assert present in (set(), set(METRICS)), f"{crash_at}: half an ingest: {sorted(present)}"
        if present:
            for name in METRICS:
                pd.testing.assert_frame_equal(got[name], expected[name])
            assert metric_rows == (len(METRICS),)
            assert logs == [(len(METRICS), expected_points)], f"{crash_at}: ingest log {logs}"
            states["whole"] += 1
        else:
            assert metric_rows == (0,), f"{crash_at}: metrics rows without their points"
            assert logs == [], f"{crash_at}: an ingest log without its points"
            states["absent"] += 1
        if crash_at in {"ingest.begin", "ingest.after_points", "ingest.before_commit"}:
            assert not present, f"{crash_at}: data of an uncommitted ingest survived"
        if crash_at == "ingest.after_commit":
            assert present, f"{crash_at}: a committed ingest was lost"

        # the same ingest again: the file exactly once, whatever the crash left
        result = CliRunner().invoke(app, ["ingest", str(data), "--db", str(db)])
        assert result.exit_code == 0, result.output
        with open_checked(db) as store:
            got = points_by_metric(store, METRICS)
            counts = (
                store.cursor()
                .execute(
                    "SELECT count(*), count(DISTINCT (metric_id, ts)) FROM points p JOIN metrics m ON m.id = p.metric_id"
                    " WHERE list_contains(?, m.name)",
                    [METRICS],
                )
                .fetchone()
            )
            logs = (
                store.cursor()
                .execute("SELECT metrics, points FROM ingests WHERE source = ?", [str(data)])
                .fetchall()
            )
        for name in METRICS:
            pd.testing.assert_frame_equal(got[name], expected[name])
        assert counts == (ROWS * len(METRICS), ROWS * len(METRICS))  # missing cells are stored as NULL rows
        assert logs == [(len(METRICS), expected_points)] * (2 if present else 1)
        if budget.spent(n + 1):
            break
    summary("ingest", outcomes, budget, {"store after kill": dict(states)})


# -- scoring ------------------------------------------------------------------------------------
def scoring_state(store: Store) -> dict[str, tuple[pd.DataFrame, pd.DataFrame]]:
    cur = store.cursor()
    out = {}
    for name in METRICS:
        scores = cur.execute(
            "SELECT s.ts, s.score FROM scores s JOIN metrics m ON m.id = s.metric_id"
            " WHERE m.name = ? AND s.detector = 'novelty' ORDER BY s.ts",
            [name],
        ).df()
        anomalies = cur.execute(
            "SELECT a.start_ts, a.end_ts, a.peak_ts, a.peak_score FROM anomalies a JOIN metrics m ON m.id = a.metric_id"
            " WHERE m.name = ? AND a.detector = 'novelty' ORDER BY a.start_ts",
            [name],
        ).df()
        out[name] = (scores, anomalies)
    return out


def same_results(a: tuple[pd.DataFrame, pd.DataFrame], b: tuple[pd.DataFrame, pd.DataFrame]) -> bool:
    (scores_a, anomalies_a), (scores_b, anomalies_b) = a, b
    if len(scores_a) != len(scores_b) or len(anomalies_a) != len(anomalies_b):
        return False
    if not (scores_a["ts"].to_numpy() == scores_b["ts"].to_numpy()).all():
        return False
    if not np.allclose(scores_a["score"], scores_b["score"], atol=1e-9, equal_nan=True):
        return False
    for col in ("start_ts", "end_ts", "peak_ts"):
        if not (anomalies_a[col].to_numpy() == anomalies_b[col].to_numpy()).all():
            return False
    return bool(np.allclose(anomalies_a["peak_score"], anomalies_b["peak_score"], atol=1e-9))


def test_scoring_survives_kills_old_or_new_never_a_mix(tmp_path: Path) -> None:
    budget = Budget()
    rng = np.random.default_rng(SEED + 1)
    data = write_metrics_csv(tmp_path / "metrics.csv", seed=3, names=METRICS)
    template = tmp_path / "template.duckdb"
    with Store(template) as store:
        ingest_file(store, data)
        detect_metrics(store, detector="novelty", threshold=3.5)
        # mark the previous results so that "old" can never be mistaken for "new"
        store.cursor().execute("UPDATE scores SET score = score + 1000")
        store.cursor().execute("UPDATE anomalies SET peak_score = peak_score + 1000")
        old = scoring_state(store)
    assert all(len(o[0]) == ROWS and len(o[1]) > 0 for o in old.values())
    reference = copy_store(template, tmp_path / "reference.duckdb")
    done = CliRunner().invoke(app, ["detect", "--detector", "novelty", "--db", str(reference)])
    assert done.exit_code == 0, done.output
    with Store(reference) as store:
        new = scoring_state(store)
    assert all(not same_results(old[m], new[m]) and len(new[m][1]) > 0 for m in METRICS)

    named = [
        f"detect.{point}#{k}"
        for k in (1, 3, 2, 4)
        for point in ("after_delete", "before_commit", "after_commit")
    ]
    kills = schedule(named, random_from="detect.begin", span=0.8, rng=rng)
    outcomes: list[Outcome] = []
    mixes: Counter[int] = Counter()
    for n, crash_at in enumerate(kills):
        db = copy_store(template, tmp_path / f"detect-{n}.duckdb")
        outcome = run_telewatch(["detect", "--detector", "novelty", "--db", str(db)], crash_at=crash_at)
        if "+" not in crash_at:
            assert outcome.killed, f"{crash_at}: the process was not killed:\n{outcome.output}"
        outcomes.append(outcome)
        with open_checked(db) as store:
            state = scoring_state(store)
        generation = {}
        for name in METRICS:
            is_old, is_new = same_results(state[name], old[name]), same_results(state[name], new[name])
            assert is_old or is_new, f"{crash_at}: {name} holds a mix of old and new scores/anomalies"
            generation[name] = "new" if is_new else "old"
        renewed = sum(g == "new" for g in generation.values())
        mixes[renewed] += 1
        if "#" in crash_at:  # metrics are scored in name order, one transaction each
            point, k = crash_at.split("#")
            assert renewed == (int(k) if point == "detect.after_commit" else int(k) - 1), (
                crash_at,
                generation,
            )
            assert [generation[m] for m in METRICS] == ["new"] * renewed + ["old"] * (len(METRICS) - renewed)

        # a rerun gives what an uncrashed run gives
        result = CliRunner().invoke(app, ["detect", "--detector", "novelty", "--db", str(db)])
        assert result.exit_code == 0, result.output
        with open_checked(db) as store:
            state = scoring_state(store)
        for name in METRICS:
            assert same_results(state[name], new[name]), (
                f"{crash_at}: the rerun of {name} differs from a clean run"
            )
        if budget.spent(n + 1):
            break
    summary(
        "scoring", outcomes, budget, {"metrics renewed at the kill: iterations": dict(sorted(mixes.items()))}
    )


# -- alerting -----------------------------------------------------------------------------------
@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as r:
        yield r


def outbox_rows(store: Store, ids: list[int]) -> dict[int, dict[str, Any]]:
    cur = store.cursor()
    rows = cur.execute(
        "SELECT id, idempotency_key, status, lease_until FROM alert_notifications WHERE list_contains(?, id)",
        [ids],
    ).fetchall()
    out = {int(r[0]): {"key": r[1], "status": r[2], "lease_until": r[3]} for r in rows}
    for nid in out:
        out[nid]["attempts"] = [
            r[0]
            for r in cur.execute(
                "SELECT ok FROM alert_delivery_attempts WHERE notification_id = ? ORDER BY attempt", [nid]
            ).fetchall()
        ]
    return out


def test_alert_delivery_survives_kills_nothing_lost_nothing_sent_twice(
    tmp_path: Path, receiver: WebhookReceiver
) -> None:
    budget = Budget()
    rng = np.random.default_rng(SEED + 2)
    config_path = tmp_path / "alerting.yaml"
    lease = 0.5
    config_path.write_text(
        yaml.safe_dump(
            {
                "channels": {
                    "hook": {
                        "type": "webhook",
                        "url": receiver.url,
                        "send_chart": False,
                        "timeout": "5s",
                        "retry": {"initial": "1s", "max": "2s", "lease": f"{int(lease * 1000)}ms"},
                    }
                },
                "rules": [{"name": "web", "channels": ["hook"]}],
            }
        ),
        encoding="utf-8",
    )
    config = load_alerting_config(config_path)
    template = tmp_path / "template.duckdb"
    Store(template).close()
    count = 5
    named = [
        f"deliver.{point}#{k}" for k in (1, 3, 5, 2) for point in ("after_claim", "after_send", "after_mark")
    ]
    kills = schedule(named, random_from="deliver.begin", span=0.4, rng=rng)
    outcomes: list[Outcome] = []
    duplicates: Counter[str] = Counter()
    for n, crash_at in enumerate(kills):
        db = copy_store(template, tmp_path / f"alerts-{n}.duckdb")
        now = pd.Timestamp.now(tz="UTC")
        candidates = [
            replace(
                sample_candidate(now=now, metric=f"metric_{i}", key=f"it{n}-k{i}", with_series=False),
                incident_id=None,
            )
            for i in range(count)
        ]
        with Store(db) as store:
            ids = submit_alerts(store, candidates=candidates, rules=config, now=now).notifications
        assert len(ids) == count
        before = len(receiver.keys())
        outcome = run_telewatch(
            ["alerts", "deliver", "--config", str(config_path), "--db", str(db)], crash_at=crash_at
        )
        if "+" not in crash_at:
            assert outcome.killed, f"{crash_at}: the process was not killed:\n{outcome.output}"
        outcomes.append(outcome)

        with open_checked(db) as store:
            rows = outbox_rows(store, ids)
        keys = {nid: rows[nid]["key"] for nid in ids}
        got = receiver.keys()[before:]
        assert {r["status"] for r in rows.values()} <= {"pending", "sending", "sent"}
        for nid in ids:
            if rows[nid]["status"] == "sent":  # never marked sent before the channel had it
                assert keys[nid] in got, f"{crash_at}: notification {nid} marked sent but never received"
                assert rows[nid]["attempts"][-1] is True
        sent = sum(r["status"] == "sent" for r in rows.values())
        if "#" in crash_at:
            point, k = crash_at.split("#")
            assert sent == (int(k) if point == "deliver.after_mark" else int(k) - 1), (crash_at, rows)
            assert len(got) == (int(k) - 1 if point == "deliver.after_claim" else int(k)), (crash_at, got)

        # deliver again (after the dead process's lease) until the outbox is empty
        with Store(db) as store:
            for _ in range(20):
                rows = outbox_rows(store, ids)
                if all(r["status"] == "sent" for r in rows.values()):
                    break
                leases = [r["lease_until"] for r in rows.values() if r["lease_until"] is not None]
                if leases:
                    wait = (
                        pd.Timestamp(max(leases)) - pd.Timestamp.now(tz="UTC").tz_localize(None)
                    ).total_seconds()
                    time.sleep(max(0.0, wait) + 0.05)
                deliver_outbox(store, channels=config)
            rows = outbox_rows(store, ids)
        got = receiver.keys()[before:]
        for nid in ids:
            row = rows[nid]
            assert row["status"] == "sent", f"{crash_at}: notification {nid} lost ({row})"
            assert row["attempts"].count(True) == 1, f"{crash_at}: {nid} has attempts {row['attempts']}"
            assert set(row["attempts"]) <= {True, None}
            assert row["attempts"].count(None) <= 1
        assert set(keys.values()) <= set(got), f"{crash_at}: a notification never reached the receiver"
        # in order, first deliveries
        assert list(dict.fromkeys(got)) == [keys[nid] for nid in ids]
        twice = [k for k, c in Counter(got).items() if c > 1]
        for key in twice:  # only the one the dead process had sent but not yet marked
            nid = next(i for i, k in keys.items() if k == key)
            assert Counter(got)[key] == 2
            assert rows[nid]["attempts"] == [None, True], (crash_at, rows[nid])
        if crash_at.startswith("deliver.after_send"):
            assert len(twice) == 1
        elif "+" not in crash_at:
            assert twice == [], f"{crash_at}: duplicates {twice}"
        assert len(twice) <= 1
        point = crash_at.split("#")[0].split("+")[0] + ("+random" if "+" in crash_at else "")
        duplicates[point] += len(twice)
        if budget.spent(n + 1):
            break
    summary("alerting", outcomes, budget, {"receiver-side duplicates by kill point": dict(duplicates)})


# -- the lock of a dead process -----------------------------------------------------------------
HOLD = """
import sys, time
from telewatch.store.db import Store
store = Store(sys.argv[1])
tx = store.cursor()
tx.execute("BEGIN TRANSACTION")
tx.execute("INSERT INTO metrics (name, labels) VALUES ('uncommitted', '{}')")
print("holding", flush=True)
time.sleep(120)
"""


# -- monitor ticks ------------------------------------------------------------------------------
TICK_T0 = pd.Timestamp("2026-03-01 00:00", tz="UTC")
TICK_FIRST = TICK_T0 + pd.Timedelta(hours=24)  # the template's last tick
TICK_ONE = TICK_FIRST + pd.Timedelta(minutes=15)  # the tick that is killed
TICK_TWO = TICK_ONE + pd.Timedelta(minutes=10)  # the tick after it


def tick_rows() -> list[tuple[pd.Timestamp, str, float | None]]:
    """Three minute-level metrics up to TICK_TWO: a spike inside TICK_ONE's new minutes, a burst that
    begins in them and goes on into TICK_TWO's, a NULL and a metric without new rows in TICK_ONE."""
    rng = np.random.default_rng(13)
    minutes = np.arange(int((TICK_TWO - TICK_T0) / pd.Timedelta(minutes=1)))
    daily = np.sin(2 * np.pi * minutes / 1440)
    series = {
        "cpu": 50 + 10 * daily + rng.normal(0, 1.0, minutes.size),
        "errors": rng.poisson(5, minutes.size).astype(float),
        "rx": 1000 + 300 * daily + rng.normal(0, 20.0, minutes.size),
    }
    first = 24 * 60
    series["cpu"][first + 4 : first + 7] += 40  # a spike that ends inside TICK_ONE
    series["errors"][first + 12 : first + 20] = 80  # a burst across TICK_ONE and TICK_TWO
    rows: list[tuple[pd.Timestamp, str, float | None]] = []
    for name, values in series.items():
        for m in minutes.tolist():
            if name == "rx" and first <= m < first + 15:
                continue  # no rows in TICK_ONE's minutes: this series has nothing new there
            missing = name == "cpu" and m == first + 9
            rows.append((TICK_T0 + pd.Timedelta(minutes=m), name, None if missing else float(values[m])))
    return rows


def tick_outcome(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    """Everything a tick writes that must not depend on a kill (ids and wall-clock times left out)."""
    cur = store.cursor()
    queries = {
        "points": "SELECT m.name, p.ts, p.value FROM points p JOIN metrics m ON m.id = p.metric_id",
        "scores": "SELECT m.name, s.detector, s.ts, round(s.score, 9) FROM scores s"
        " JOIN metrics m ON m.id = s.metric_id",
        "anomalies": "SELECT m.name, a.detector, a.start_ts, a.end_ts, a.peak_ts, round(a.peak_score, 9),"
        " round(a.value, 9), round(a.expected, 9) FROM anomalies a JOIN metrics m ON m.id = a.metric_id",
        "watermarks": "SELECT series_key, last_scored FROM monitor_series",
        "incidents": "SELECT start_ts, end_ts, peak_ts, state, type FROM incidents",
        "notifications": "SELECT channel, kind, group_key, alert_keys, status FROM alert_notifications",
        "alert_state": "SELECT key, monitor, metric, status FROM alert_state",
    }
    out = {}
    for name, sql in queries.items():
        rows = cur.execute(sql).fetchall()
        out[name] = sorted(rows, key=repr)
    return out


def test_monitor_ticks_survive_kills_and_resume_exactly(tmp_path: Path) -> None:
    """A monitor tick killed anywhere (after the points, the source cursor, the scores, the anomalies, the
    tick state, the incidents, before or after alerting, or at a random moment) and run again stores,
    scores, records and queues exactly what an uncrashed run does, and so does the tick after it."""
    # every named point and four random kills, whatever the load (about 3 s an iteration)
    budget = Budget(minimum=12)
    rng = np.random.default_rng(SEED + 3)
    directory = Path(tempfile.mkdtemp(prefix="telewatch-crash-pg-"))  # user postgres must reach it
    server = make_postgres(directory)
    server.start()
    try:
        import psycopg

        with psycopg.connect(server.dsn, autocommit=True) as con, con.cursor() as cur:
            cur.execute("CREATE TABLE samples (ts timestamptz NOT NULL, metric text NOT NULL, value float8)")
            with cur.copy("COPY samples (ts, metric, value) FROM STDIN") as copy:
                for row in tick_rows():
                    copy.write_row(row)
        config = tmp_path / "monitors.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    "alerting": {"channels": {"hook": {"type": "webhook", "url": "http://127.0.0.1:9/"}}},
                    "monitors": [
                        {
                            "name": "net",
                            "source": {
                                "type": "postgres",
                                "dsn": server.dsn,
                                "table": "samples",
                                "metric_column": "metric",
                                "value_column": "value",
                            },
                            "schedule": {"every": "5m"},
                            "history": "1d",
                            "train": {"every": "1d", "window": "1d", "min_points": 60, "warm_up": "0s"},
                            "detectors": [
                                {"type": "robust_bands", "params": {"window": 60}, "threshold": 6.0},
                                {"type": "robust_z", "threshold": 6.0},
                            ],
                            "channels": ["hook"],
                        }
                    ],
                }
            ),
            encoding="utf-8",
        )

        def tick_args(db: Path, now: pd.Timestamp) -> list[str]:
            return [
                "check",
                "--config",
                str(config),
                "--db",
                str(db),
                "--no-deliver",
                "--now",
                now.isoformat(),
            ]

        def check(db: Path, now: pd.Timestamp) -> None:
            result = CliRunner().invoke(app, tick_args(db, now))
            assert result.exit_code == 0, result.output

        template = tmp_path / "template.duckdb"
        check(template, TICK_FIRST)  # trains on the first day and scores it
        reference = copy_store(template, tmp_path / "reference.duckdb")
        check(reference, TICK_ONE)
        with Store(reference) as store:
            after_one = tick_outcome(store)
        check(reference, TICK_TWO)
        with Store(reference) as store:
            after_two = tick_outcome(store)
        # the killed tick has something to lose: new anomalies, queued firing alerts, an incident
        with Store(template) as store:
            before = tick_outcome(store)
        new_anomalies = set(after_one["anomalies"]) - set(before["anomalies"])
        assert {a[0] for a in new_anomalies} >= {"cpu", "errors"}, new_anomalies
        assert len(after_one["notifications"]) > len(before["notifications"])
        assert len(after_one["incidents"]) > len(before["incidents"])

        named = [
            f"tick.{point}"
            for point in (
                "after_state",  # the watermarks moved: the findings exist only as owed alerts
                "before_alerts",
                "after_incidents",
                "after_points",
                "after_cursor",
                "after_scores",
                "after_anomalies",
                "after_alerts",
            )
        ]
        kills = schedule(named, random_from="tick.begin", span=1.5, rng=rng)
        outcomes: list[Outcome] = []
        for n, crash_at in enumerate(kills):
            db = copy_store(template, tmp_path / f"tick-{n}.duckdb")
            outcome = run_telewatch(tick_args(db, TICK_ONE), crash_at=crash_at)
            if "+" not in crash_at:
                assert outcome.killed, f"{crash_at}: the process was not killed:\n{outcome.output}"
            outcomes.append(outcome)
            open_checked(db).close()
            check(db, TICK_ONE)  # the scheduler runs the missed tick again
            with Store(db) as store:
                got = tick_outcome(store)
            for part, rows in after_one.items():
                assert got[part] == rows, f"{crash_at}: {part} after the rerun differ from an uncrashed run"
            check(db, TICK_TWO)
            with Store(db) as store:
                got = tick_outcome(store)
            for part, rows in after_two.items():
                assert got[part] == rows, (
                    f"{crash_at}: {part} after the next tick differ from an uncrashed run"
                )
            if budget.spent(n + 1):
                break
        summary("monitor ticks", outcomes, budget)
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)


def test_a_killed_holder_leaves_no_lock_behind(tmp_path: Path) -> None:
    db = tmp_path / "held.duckdb"
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(db)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().decode()
        assert line.strip() == "holding", line + proc.stdout.read().decode()
        # a live holder: refused, with its PID
        with pytest.raises(StoreError, match=rf"in use by another telewatch process \(PID {proc.pid}\)"):
            Store(db)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(20)
    # dead: the next process opens at once (the OS lock died with it) and the open transaction is gone
    started = time.monotonic()
    with open_checked(db) as store:
        assert store.cursor().execute("SELECT count(*) FROM metrics").fetchone() == (0,)
    assert time.monotonic() - started < 10
    # and a child process can open it too, then the parent again
    outcome = run_telewatch(["metrics", "--db", str(db)])
    assert outcome.returncode == 0, outcome.output
    with open_checked(db):
        pass
