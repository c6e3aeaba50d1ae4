"""Event-log source: JSON-lines and syslog files followed incrementally, rotation included."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from telewatch.sources.base import SourceError, SourceState
from telewatch.sources.logs import CountSpec, LogSource

T0 = pd.Timestamp("2026-03-01 10:00", tz="UTC")


def _event(minute: int, second: int, event: str, **fields: str) -> str:
    ts = (T0 + pd.Timedelta(minutes=minute, seconds=second)).isoformat()
    return json.dumps({"ts": ts, "event": event, **fields}) + "\n"


def _append(path: Path, text: str) -> None:
    with path.open("a") as fh:
        fh.write(text)


def test_jsonl_counts_per_minute_followed_incrementally_through_rotation(tmp_path: Path) -> None:
    log = tmp_path / "sessions.jsonl"
    src = LogSource(
        path=log,
        metric="sessions",
        count_by=["event"],
        counts=[CountSpec(name="failed_logins", where={"event": "login", "result": "fail"})],
    )
    _append(
        log, _event(0, 5, "start") + _event(0, 10, "start") + _event(0, 30, "alive") + _event(1, 1, "stop")
    )
    _append(
        log,
        _event(1, 20, "login", result="fail") + _event(1, 40, "login", result="fail") + _event(2, 0, "start"),
    )
    _append(log, '{"ts": "2026-03-01T10:02:30Z", "event": "sta')  # a line still being written
    out, state = src.fetch_incremental(state=SourceState(), end=T0 + pd.Timedelta(minutes=2))
    got = {s.key: s.values.tolist() for s in out}
    assert got == {
        "failed_logins": [0.0, 2.0],
        "sessions{event=alive}": [1.0, 0.0],
        "sessions{event=login}": [0.0, 2.0],
        "sessions{event=start}": [2.0, 0.0],
        "sessions{event=stop}": [0.0, 1.0],
    }
    assert all(s.values.index[0] == T0 for s in out)
    # the same tick again reads nothing new
    again, state = src.fetch_incremental(state=state, end=T0 + pd.Timedelta(minutes=2))
    assert again == []
    # the line is finished, more events, then logrotate moves the file and a new one starts
    _append(log, 'rt"}\n' + _event(2, 45, "alive") + _event(3, 5, "start"))
    log.rename(tmp_path / "sessions.jsonl.1")
    _append(log, _event(3, 50, "start") + _event(4, 10, "stop"))
    out, state = src.fetch_incremental(state=state, end=T0 + pd.Timedelta(minutes=4))
    got = {s.key: s.values.tolist() for s in out}
    assert got["sessions{event=start}"] == [2.0, 2.0]  # minute 2: 10:02:00 + 10:02:30; minute 3: one per file
    assert got["sessions{event=alive}"] == [1.0, 0.0]
    assert got["sessions{event=stop}"] == [0.0, 0.0]  # 10:04:10 is not complete yet
    assert got["failed_logins"] == [0.0, 0.0]  # silent minutes count zero
    out, _ = src.fetch_incremental(state=state, end=T0 + pd.Timedelta(minutes=5))
    assert {s.key: s.values.tolist() for s in out}["sessions{event=stop}"] == [1.0]


def test_syslog_lines_classified_into_events(tmp_path: Path) -> None:
    log = tmp_path / "auth.log"
    log.write_text(
        "2026-03-01T10:00:01+00:00 gw1 sshd[11]: Failed password for root from 10.0.0.1 port 22\n"
        "2026-03-01T10:00:09+00:00 gw1 sshd[12]: Failed password for bob from 10.0.0.2 port 22\n"
        "2026-03-01T10:00:30+00:00 gw1 sshd[13]: Accepted password for alice from 10.0.0.3 port 22\n"
        "<38>1 2026-03-01T10:01:02Z gw2 radiusd 77 - - Login incorrect user=carol nas=bras1\n"
        "Mar  1 10:01:40 gw1 sshd[14]: Failed password for eve from 10.0.0.9 port 22\n"
        "this line is not syslog\n"
    )
    src = LogSource(
        path=log,
        format="syslog",
        metric="auth",
        count_by=["event"],
        classify={"failed_login": r"Failed password|Login incorrect", "login": r"Accepted password"},
    )
    out = src.fetch(start=T0, end=T0 + pd.Timedelta(minutes=2))
    assert {s.key: s.values.tolist() for s in out} == {
        "auth{event=failed_login}": [2.0, 2.0],
        "auth{event=login}": [1.0, 0.0],
    }


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    src = LogSource(path=tmp_path / "nope.jsonl", count_by=["event"])
    with pytest.raises(SourceError, match=r"nope\.jsonl"):
        src.fetch_incremental(state=SourceState(), end=T0)
