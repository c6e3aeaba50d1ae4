"""``telewatch replay``: the ticks a configuration would have run, over stored points, sending nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from support.webhook import WebhookReceiver
from telewatch.services.replay import load_replay_monitors, replay
from telewatch.store import repo
from telewatch.store.db import Store

START = pd.Timestamp("2026-03-01", tz="UTC")
DAYS = 5
OUTAGE = (pd.Timestamp("2026-03-05 14:00", tz="UTC"), pd.Timestamp("2026-03-05 14:40", tz="UTC"))
LIVE_TABLES = (
    "points",
    "scores",
    "anomalies",
    "incidents",
    "alert_notifications",
    "alert_state",
    "monitor_series",
    "monitor_runs",
    "label_windows",
)


def _month(store: Store) -> None:
    """Five days of a daily-cycled throughput and a latency, an outage on the last day (throughput to
    10 %, latency x5 for 40 minutes), labelled."""
    idx = pd.date_range(START, periods=DAYS * 1440, freq="1min")
    rng = np.random.default_rng(7)
    phase = 2 * np.pi * (idx.hour * 60 + idx.minute).to_numpy() / 1440
    throughput = 1000 + 400 * np.sin(phase) + rng.normal(0, 25, idx.size)
    latency = 0.2 + 0.03 * np.sin(phase) + rng.normal(0, 0.005, idx.size)
    out = (idx >= OUTAGE[0]) & (idx < OUTAGE[1])
    throughput[out] *= 0.1
    latency[out] *= 5
    with store.transaction(series=True) as tx:
        for name, values in (("throughput", throughput), ("web_response", latency)):
            mid = repo.upsert_metric(tx, name=name, group="web", owner="@web")
            repo.write_points(tx, mid, pd.Series(values, index=idx))
            repo.write_label_windows(
                tx, [(mid, OUTAGE[0], OUTAGE[1] - pd.Timedelta(minutes=1), "anomaly", "test", None)]
            )


def _counts(store: Store) -> dict[str, int]:
    cur = store.cursor()
    return {t: int(cur.execute(f"SELECT count(*) FROM {t}").fetchone()[0]) for t in LIVE_TABLES}  # type: ignore[index]


@pytest.mark.slow
def test_replay_finds_the_outage_sends_nothing_and_leaves_the_store_alone(tmp_path: Path) -> None:
    with WebhookReceiver() as hook:
        monitors = tmp_path / "monitors.yaml"
        monitors.write_text(
            f"""
alerting:
  channels:
    ops: {{type: webhook, url: "{hook.url}"}}
monitors:
  - name: web
    owner: "@web"
    source: {{type: postgres, host: db.invalid, password: "${{REPLAY_TEST_UNSET_PASSWORD}}",
              table: t, value_columns: [throughput, web_response]}}
    schedule: {{every: 30m}}
    history: 7d
    channels: [ops]
""",
            encoding="utf-8",
        )
        loaded = load_replay_monitors(monitors)  # an unset ${NAME} does not stop a replay
        with Store(tmp_path / "live.duckdb") as live:
            _month(live)
            before = _counts(live)
            from telewatch.monitors.validate import load_alerting_for

            report = replay(
                live,
                start=START + pd.Timedelta(days=3),
                end=START + pd.Timedelta(days=DAYS),
                monitors=loaded.monitors,
                alerting=load_alerting_for(loaded, source=str(monitors)),
            )
            after = _counts(live)
        assert hook.requests == []  # rendered, never sent
    assert before == after
    assert report.ticks == 2 * 48 + 1  # both ends included
    assert not report.errors
    # the outage is one incident, told once firing and once resolved, the quiet days say nothing
    hits = [i for i in report.incidents if i.start <= OUTAGE[1] and i.end >= OUTAGE[0]]
    assert len(hits) == 1, [i.to_dict() for i in report.incidents]
    assert set(hits[0].metrics) == {"throughput", "web_response"}
    firing = [m for m in report.messages if m.incident_id == hits[0].id and m.kind != "resolved"]
    assert firing
    assert firing[0].severity == "critical"
    assert len(report.messages) <= 6, [m.to_dict() for m in report.messages]
    day = {d.day: d for d in report.days}["2026-03-05"]
    assert (day.labels, day.labels_caught) == (2, 2)
    assert report.summary_line().startswith("REPLAY days=2 ")


@pytest.mark.slow
def test_replay_cli_prints_the_table_and_writes_json_and_messages(tmp_path: Path) -> None:
    db = tmp_path / "live.duckdb"
    with Store(db) as live:
        _month(live)
    exe = Path(sys.executable).parent / "telewatch"
    out = subprocess.run(
        [
            str(exe),
            "replay",
            "--from",
            "2026-03-05T00:00:00Z",
            "--to",
            "2026-03-06T00:00:00Z",
            "--every",
            "1h",
            "--json",
            str(tmp_path / "r.json"),
            "--messages-dir",
            str(tmp_path / "msgs"),
            "--db",
            str(db),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    last = out.stdout.strip().splitlines()[-1]
    assert last.startswith("REPLAY days=1 anomalies=")
    assert " messages=" in last
    assert " firing=" in last
    data = json.loads((tmp_path / "r.json").read_text())
    assert {"days", "incidents", "messages", "totals"} <= set(data)
    assert data["incidents"]
    assert {"start", "end", "peak", "type", "metrics", "messages"} <= set(data["incidents"][0])
    assert data["incidents"][0]["start"].endswith("Z")
    pngs = sorted((tmp_path / "msgs").glob("*.png"))
    assert pngs
    assert pngs[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert any("throughput" in p.read_text() for p in (tmp_path / "msgs").glob("*.txt"))


def test_replay_refuses_an_empty_range(tmp_path: Path) -> None:
    from telewatch.core.errors import ValidationError

    with Store(tmp_path / "live.duckdb") as live, pytest.raises(ValidationError, match="must be after"):
        replay(live, start="2026-03-02", end="2026-03-01")


@pytest.mark.slow
def test_an_outage_is_held_to_its_end_and_the_evening_peak_is_a_habit(tmp_path: Path) -> None:
    """Six days with a peak at 22:00 every evening, then a 2-hour collapse to 5 %: the collapse is one
    incident that lasts until traffic is back (not the one minute the detector found new), its resolved
    message says so, and the evening peak, done every day, pages nobody."""
    days = 6
    idx = pd.date_range(START, periods=days * 1440, freq="1min")
    rng = np.random.default_rng(3)
    minute = (idx.hour * 60 + idx.minute).to_numpy()
    values = 1000 + 300 * np.sin(2 * np.pi * minute / 1440) + rng.normal(0, 20, idx.size)
    values[(minute >= 1320) & (minute < 1323)] *= 2.5  # the evening peak
    outage = (idx >= START + pd.Timedelta(days=5, hours=12)) & (idx < START + pd.Timedelta(days=5, hours=14))
    values[outage] *= 0.05
    with Store(tmp_path / "live.duckdb") as live:
        with live.transaction(series=True) as tx:
            mid = repo.upsert_metric(tx, name="throughput")
            repo.write_points(tx, mid, pd.Series(values, index=idx))
        report = replay(
            live,
            start=START + pd.Timedelta(days=4),
            end=START + pd.Timedelta(days=days),
            every=timedelta(minutes=15),
        )
    held = [
        i
        for i in report.incidents
        if i.start <= START + pd.Timedelta(days=5, hours=12, minutes=5)
        and i.end >= START + pd.Timedelta(days=5, hours=12)
    ]
    assert len(held) == 1, [i.to_dict() for i in report.incidents]
    assert held[0].end >= START + pd.Timedelta(days=5, hours=13, minutes=50)  # the whole outage
    resolved = [m for m in report.messages if m.incident_id == held[0].id and m.kind == "resolved"]
    assert len(resolved) == 1
    assert "2 h" in resolved[0].text or "1 h 5" in resolved[0].text, resolved[0].text
    evening = [m for m in report.messages if m.kind != "resolved" and m.at.hour in (22, 23)]
    assert evening == [], [m.subject for m in evening]


@pytest.mark.slow
def test_a_share_off_by_less_than_a_point_is_recorded_not_paged(tmp_path: Path) -> None:
    """An error share that is almost always ~0.02 %: a rise to 0.6 % for 10 minutes is thirty times
    the usual value (an anomaly, recorded) but 99.4 % of requests still succeed — not a page; a rise
    to 6 % is. ``alert.min_change`` sets the floor per metric ({"*": 0} pages both)."""
    days = 5
    idx = pd.date_range(START, periods=days * 1440, freq="1min")
    rng = np.random.default_rng(11)
    error = np.abs(rng.normal(0.0002, 0.00005, idx.size))
    small = (idx >= START + pd.Timedelta(days=4, hours=3)) & (
        idx < START + pd.Timedelta(days=4, hours=3, minutes=10)
    )
    large = (idx >= START + pd.Timedelta(days=4, hours=15)) & (
        idx < START + pd.Timedelta(days=4, hours=15, minutes=10)
    )
    error[small] = 0.006
    error[large] = 0.06

    def run(floor: str) -> tuple[list[pd.Timestamp], list[pd.Timestamp]]:
        monitors = tmp_path / f"monitors{len(floor)}.yaml"
        monitors.write_text(
            f"""
alerting:
  channels:
    ops: {{type: webhook, url: "http://127.0.0.1:9/hook"}}
monitors:
  - name: web
    source: {{type: store}}
    schedule: {{every: 30m}}
    history: 4d
    channels: [ops]
    alert: {{{floor}}}
""",
            encoding="utf-8",
        )
        loaded = load_replay_monitors(monitors)
        from telewatch.monitors.validate import load_alerting_for

        with Store(tmp_path / f"live{len(floor)}.duckdb") as live:
            with live.transaction(series=True) as tx:
                mid = repo.upsert_metric(tx, name="error", group="web")
                repo.write_points(tx, mid, pd.Series(error, index=idx))
            report = replay(
                live,
                start=START + pd.Timedelta(days=4),
                end=START + pd.Timedelta(days=days),
                monitors=loaded.monitors,
                alerting=load_alerting_for(loaded, source=str(monitors)),
            )
        assert not report.errors
        found = [i.start for i in report.incidents]
        paged = [m.at for m in report.messages if m.kind != "resolved"]
        severities.extend(m.severity for m in report.messages if m.kind != "resolved")
        return found, paged

    severities: list[str] = []

    found, paged = run("")
    small_start, large_start = idx[small][0], idx[large][0]

    def near(times: list[pd.Timestamp], t: pd.Timestamp) -> bool:
        return any(abs(x - t) <= pd.Timedelta(minutes=45) for x in times)

    assert near(found, small_start), found  # both recorded
    assert near(found, large_start), found
    assert near(paged, large_start), paged  # only the large one paged
    assert not near(paged, small_start), paged
    # 6 % of errors is 6 percentage points up: a warning, not "more than 29,000 %" and critical
    assert severities == ["warning"], severities
    found, paged = run('min_change: {"*": 0}')
    assert near(paged, small_start), paged
    assert near(paged, large_start), paged


@pytest.mark.slow
def test_a_burst_over_before_the_tick_is_told_once_as_over_an_ongoing_one_pages(tmp_path: Path) -> None:
    """Latency x10 for five minutes (10:03-10:07) is over when the 10:15 tick sees it: one message that
    says it is back to normal, a warning, and no "resolved" message after it. The same jump lasting
    50 minutes (15:05-15:54) is still going on at the 15:15 tick: critical, then resolved."""
    days = 5
    idx = pd.date_range(START, periods=days * 1440, freq="1min")
    rng = np.random.default_rng(5)
    minute = (idx.hour * 60 + idx.minute).to_numpy()
    latency = 0.2 + 0.03 * np.sin(2 * np.pi * minute / 1440) + rng.normal(0, 0.005, idx.size)
    last = START + pd.Timedelta(days=4)
    burst = (idx >= last + pd.Timedelta(hours=10, minutes=3)) & (
        idx < last + pd.Timedelta(hours=10, minutes=8)
    )
    outage = (idx >= last + pd.Timedelta(hours=15, minutes=5)) & (
        idx < last + pd.Timedelta(hours=15, minutes=55)
    )
    latency[burst | outage] *= 10
    with Store(tmp_path / "live.duckdb") as live:
        with live.transaction(series=True) as tx:
            mid = repo.upsert_metric(tx, name="web_response", unit="s")
            repo.write_points(tx, mid, pd.Series(latency, index=idx))
        report = replay(live, start=last, end=last + pd.Timedelta(days=1), every=timedelta(minutes=15))
    assert not report.errors

    def told(at: pd.Timestamp) -> list[Any]:
        hit = [i for i in report.incidents if i.start <= at + pd.Timedelta(minutes=5) and i.end >= at]
        assert len(hit) == 1, [i.to_dict() for i in report.incidents]
        return [m for m in report.messages if m.incident_id == hit[0].id]

    over = told(last + pd.Timedelta(hours=10, minutes=3))
    assert [(m.kind, m.severity) for m in over] == [("firing", "warning")], [m.to_dict() for m in over]
    assert "(back to normal)" in over[0].subject
    assert "already back to normal, after 5 min\n" in over[0].text
    ongoing = told(last + pd.Timedelta(hours=15, minutes=5))
    assert [m.kind for m in ongoing] == ["firing", "resolved"], [m.to_dict() for m in ongoing]
    assert ongoing[0].severity == "critical"
    assert "back to normal" not in ongoing[0].subject


def _told_about_the_outage(report: Any, last: pd.Timestamp) -> list[Any]:
    """The messages about the one incident of the outage from 15:05 on day ``last``."""
    outage = [
        i
        for i in report.incidents
        if i.start <= last + pd.Timedelta("15:10:00") and i.end >= last + pd.Timedelta("15:05:00")
    ]
    assert len(outage) == 1, [i.to_dict() for i in report.incidents]
    return [m for m in report.messages if m.incident_id == outage[0].id]


def _latency_with_burst_and_outage(days: int = 5) -> tuple[pd.Series, pd.Timestamp]:
    """Daily-cycled latency; on the last day x10 for 5 minutes (10:03-10:07) and for 50 (15:05-15:54)."""
    idx = pd.date_range(START, periods=days * 1440, freq="1min")
    rng = np.random.default_rng(5)
    minute = (idx.hour * 60 + idx.minute).to_numpy()
    latency = 0.2 + 0.03 * np.sin(2 * np.pi * minute / 1440) + rng.normal(0, 0.005, idx.size)
    last = START + pd.Timedelta(days=days - 1)
    for lo, hi in (("10:03", "10:08"), ("15:05", "15:55")):
        latency[(idx >= last + pd.Timedelta(lo + ":00")) & (idx < last + pd.Timedelta(hi + ":00"))] *= 10
    return pd.Series(latency, index=idx), last


def test_an_outage_a_detector_flags_again_as_it_goes_on_stays_one_anomaly_and_one_alert(
    tmp_path: Path,
) -> None:
    """The seasonal channel flags the 50-minute outage again at 15:14 and 15:34 (each a new high of
    the outage: a new surprisal, weighed in full): the ticks continue the anomaly that is still held
    open instead of opening one per new run, so the outage is one anomaly, one firing message and one
    resolved (before: three anomalies, two "updated" messages and a resolved message for "3 metrics"
    of one metric)."""
    from telewatch.monitors.config import MonitorSpec
    from telewatch.store.anomalies import read_anomalies

    latency, last = _latency_with_burst_and_outage()
    spec = MonitorSpec.model_validate(
        {
            "name": "web",
            "source": {"type": "store"},
            "schedule": {"every": timedelta(minutes=15)},
            "history": timedelta(days=14),
            "detector": {"type": "novelty_seasonal", "params": {"channel": "profile"}},
            "channels": ["replay"],
        }
    )
    with Store(tmp_path / "live.duckdb") as live:
        with live.transaction(series=True) as tx:
            mid = repo.upsert_metric(tx, name="web_response", unit="s")
            repo.write_points(tx, mid, latency)
        report = replay(
            live, start=last, end=last + pd.Timedelta(days=1), monitors=[spec], workdir=tmp_path / "w"
        )
    assert not report.errors
    told = _told_about_the_outage(report, last)
    assert [(m.kind, m.severity) for m in told] == [("firing", "critical"), ("resolved", "warning")], [
        m.to_dict() for m in told
    ]
    assert "3 metrics" not in told[-1].subject
    assert "web_response" in told[-1].subject
    with Store(tmp_path / "w" / "replay.duckdb") as s:
        stored = read_anomalies(s.cursor())
    spans = [
        (a, b)
        for a, b in zip(stored["start_ts"], stored["end_ts"], strict=True)
        if b >= last + pd.Timedelta("15:05:00")
    ]
    assert len(spans) == 1, spans
    assert spans[0][0] == last + pd.Timedelta("15:05:00")
    assert spans[0][1] >= last + pd.Timedelta("15:50:00")


@pytest.mark.slow
def test_a_series_read_every_5_minutes_pages_an_ongoing_outage_once_not_as_back_to_normal(
    tmp_path: Path,
) -> None:
    """The 50-minute outage of a latency read every 5 minutes (SNMP, Prometheus at a 5-minute step):
    at the 15:15 tick its latest reading (15:10) is the outage's, so it is going on: one critical
    page, not "back to normal", then one "resolved". Before, a tick judged "over" against its own
    clock (readings within 2 minutes of it), which a 5-minute series never has: every tick told the
    outage again as a new "firing … (back to normal)" warning."""
    latency, last = _latency_with_burst_and_outage()
    five = latency.resample("5min").mean()
    with Store(tmp_path / "live.duckdb") as live:
        with live.transaction(series=True) as tx:
            mid = repo.upsert_metric(tx, name="web_response", unit="s")
            repo.write_points(tx, mid, five)
        report = replay(live, start=last, end=last + pd.Timedelta(days=1), every=timedelta(minutes=15))
    assert not report.errors
    told = _told_about_the_outage(report, last)
    assert [(m.kind, m.severity) for m in told] == [("firing", "critical"), ("resolved", "warning")], [
        m.to_dict() for m in told
    ]
    assert "back to normal" not in told[0].subject
    assert "already back to normal" not in told[0].text


def test_one_metric_pages_once_its_anomaly_lasts_two_metrics_page_at_once(tmp_path: Path) -> None:
    """``alert.critical_after`` (5 minutes): latency x10 from 10:12 on its own is 3 minutes old at the
    10:15 tick — a warning — and still going at 10:30, so the 10:30 tick sends the critical update,
    then it is resolved. At 14:12 latency x10 with throughput at 10 % (one incident, two metrics)
    pages critical at the 14:15 tick. (Before, both were critical at once: a two-minute latency spike
    on one metric woke someone up.)"""
    idx = pd.date_range(START, periods=DAYS * 1440, freq="1min")
    rng = np.random.default_rng(11)
    phase = 2 * np.pi * (idx.hour * 60 + idx.minute).to_numpy() / 1440
    throughput = 1000 + 400 * np.sin(phase) + rng.normal(0, 25, idx.size)
    latency = 0.2 + 0.03 * np.sin(phase) + rng.normal(0, 0.005, idx.size)
    last = START + pd.Timedelta(days=DAYS - 1)

    def between(lo: str, hi: str) -> np.ndarray:
        return np.asarray((idx >= last + pd.Timedelta(lo + ":00")) & (idx < last + pd.Timedelta(hi + ":00")))

    latency[between("10:12", "10:40") | between("14:12", "14:40")] *= 10
    throughput[between("14:12", "14:40")] *= 0.1
    with Store(tmp_path / "live.duckdb") as live:
        with live.transaction(series=True) as tx:
            for name, values in (("throughput", throughput), ("web_response", latency)):
                mid = repo.upsert_metric(tx, name=name, group="web", owner="@web")
                repo.write_points(tx, mid, pd.Series(values, index=idx))
        report = replay(live, start=last, end=last + pd.Timedelta(days=1), every=timedelta(minutes=15))
    assert not report.errors

    def told(at: str) -> list[tuple[str, str]]:
        t = last + pd.Timedelta(at + ":00")
        hit = [i for i in report.incidents if i.start <= t + pd.Timedelta(minutes=5) and i.end >= t]
        assert len(hit) == 1, [i.to_dict() for i in report.incidents]
        return [(m.kind, m.severity) for m in report.messages if m.incident_id == hit[0].id]

    assert told("10:12") == [("firing", "warning"), ("update", "critical"), ("resolved", "warning")]
    assert told("14:12")[0] == ("firing", "critical")


def test_what_was_over_can_be_told_in_an_hourly_digest_and_the_replay_shows_it(tmp_path: Path) -> None:
    """``alert: {recovered_severity: info, digest: {severities: [info], interval: 1h}}``: two bursts
    of latency x10 (10:03-10:07, 10:33-10:37), each over when its tick sees it, are not told one by
    one but in one message at 11:00; the 50-minute outage from 15:05, still going at the 15:15
    tick, pages at once. The replay forms the digest as the delivery would and lists what a channel
    gets, when it gets it."""
    from telewatch.services.replay import default_monitor

    series, last = _latency_with_burst_and_outage()
    idx = series.index
    second = (idx >= last + pd.Timedelta(hours=10, minutes=33)) & (
        idx < last + pd.Timedelta(hours=10, minutes=38)
    )
    series[second] *= 10
    base = default_monitor()
    alert = base.alert.model_validate(
        {"recovered_severity": "info", "digest": {"severities": ["info"], "interval": "1h"}}
    )
    spec = base.model_copy(update={"alert": alert})
    with Store(tmp_path / "live.duckdb") as live:
        with live.transaction(series=True) as tx:
            mid = repo.upsert_metric(tx, name="web_response", unit="s")
            repo.write_points(tx, mid, series)
        report = replay(
            live, start=last, end=last + pd.Timedelta(days=1), monitors=[spec], every=timedelta(minutes=15)
        )
        plain = replay(live, start=last, end=last + pd.Timedelta(days=1), every=timedelta(minutes=15))
    assert not report.errors
    sent = [(m.at, m.kind, m.severity) for m in report.messages]
    morning = [m for m in report.messages if m.at < last + pd.Timedelta(hours=12)]
    assert [(m.at, m.kind) for m in morning] == [(last + pd.Timedelta(hours=11), "digest")], sent
    assert morning[0].text.count("web_response") >= 2
    assert morning[0].text.count("back to normal after 5 min") == 2, morning[0].text  # when, how long
    outage = [m for m in report.messages if m.at >= last + pd.Timedelta(hours=15)]
    assert (outage[0].at, outage[0].kind, outage[0].severity) == (
        last + pd.Timedelta(hours=15, minutes=15),
        "firing",
        "critical",
    ), sent
    # without the digest, each burst is its own warning, told at its tick
    told = [(m.at, m.kind, m.severity) for m in plain.messages if m.at < last + pd.Timedelta(hours=12)]
    assert told == [
        (last + pd.Timedelta(hours=10, minutes=15), "firing", "warning"),
        (last + pd.Timedelta(hours=10, minutes=45), "firing", "warning"),
    ], told


def test_two_monitors_anomalous_at_the_same_minute_keep_their_own_incidents_and_pages(tmp_path: Path) -> None:
    """Two monitors of one store (``web``: latency, ``access``: BRAS sessions) with anomalies at the
    same minute: a two-minute latency spike (10:03-10:04, over when the 10:15 tick sees it) and a
    40-minute sessions drop (10:03-10:42). Each monitor's anomalies make their own incident: the
    latency spike stays a blip (not paged, although another team's metric was anomalous with it),
    the web team is not told "Related: sessions", and the sessions drop pages the NOC on its own.
    (Before, the two made one incident: the web team got a page for a blip that named the NOC's
    metric.)"""
    from telewatch.services.replay import default_monitor

    idx = pd.date_range(START, periods=DAYS * 1440, freq="1min")
    rng = np.random.default_rng(3)
    phase = 2 * np.pi * (idx.hour * 60 + idx.minute).to_numpy() / 1440
    latency = 0.2 + 0.03 * np.sin(phase) + rng.normal(0, 0.005, idx.size)
    sessions = 20_000 + 8_000 * np.sin(phase) + rng.normal(0, 150, idx.size)
    last = START + pd.Timedelta(days=DAYS - 1)
    at = last + pd.Timedelta(hours=10, minutes=3)
    latency[(idx >= at) & (idx < at + pd.Timedelta(minutes=2))] *= 10
    sessions[(idx >= at) & (idx < at + pd.Timedelta(minutes=40))] *= 0.2
    base = default_monitor()
    specs = [
        base.model_copy(
            update={
                "name": name,
                "owner": owner,
                "group": group,
                "source": base.source.model_copy(update={"group": group}),
            }
        )
        for name, owner, group in (("web", "@web", "web"), ("access", "@noc", "access"))
    ]
    with Store(tmp_path / "live.duckdb") as live:
        with live.transaction(series=True) as tx:
            for name, group, values in (("web_response", "web", latency), ("sessions", "access", sessions)):
                mid = repo.upsert_metric(tx, name=name, group=group)
                repo.write_points(tx, mid, pd.Series(values, index=idx))
        report = replay(
            live, start=last, end=last + pd.Timedelta(days=1), monitors=specs, every=timedelta(minutes=15)
        )
    assert not report.errors
    near = [i for i in report.incidents if i.start <= at + pd.Timedelta(minutes=5) and i.end >= at]
    assert sorted((i.monitor, tuple(i.metrics)) for i in near) == [
        ("access", ("sessions",)),
        ("web", ("web_response",)),
    ], [i.to_dict() for i in report.incidents]
    sent = [(m.kind, m.severity, m.subject) for m in report.messages]
    web = [m for m in report.messages if "web_response" in m.subject]
    assert web == [], sent  # a blip, whoever else was anomalous at that minute
    noc = [m for m in report.messages if "sessions" in m.subject]
    assert noc, sent
    assert noc[0].kind == "firing", sent
    assert all("web_response" not in m.text for m in report.messages), sent
