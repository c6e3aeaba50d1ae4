"""Use-case: an alerting dry run over stored history (``telewatch replay``).

A team wants to see what a configuration would have done before they trust it. :func:`replay` runs
the ticks the scheduler would have run between two times, on a simulated clock, over the points
already in the store: each monitor's source is replaced by :class:`StoreReplaySource`, which serves
the stored series the monitor would have fetched. The ticks run the real tick
(:func:`telewatch.services.monitor.run_monitor`: scoring, anomalies, incidents, alert rules,
rendering) against a scratch store in a temporary folder, with delivery off, so nothing is sent and
the live tables are never written. What it finds is read back from the scratch store: anomalies,
incidents and the messages (one per channel) the outbox would have delivered.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console
from rich.progress import Progress

from telewatch.core.errors import ValidationError
from telewatch.monitors.config import (
    MonitorSpec,
    Schedule,
    parse_monitors,
)
from telewatch.sources.base import ColumnarSource, FetchedBatch, series_key, utc
from telewatch.store import anomalies as anomalies_repo
from telewatch.store import monitors as monitors_repo
from telewatch.store import repo
from telewatch.store.db import Store

#: The channel a replay of the default monitor (or of monitors that name none) "sends" to.
REPLAY_CHANNEL = "replay"


class StoreReplaySource(ColumnarSource):
    """Serves series held in memory (read once from the live store) as a monitor's source would."""

    kind = "store"

    def __init__(self, batch: FetchedBatch) -> None:
        self._batch = batch

    def describe(self) -> str:
        return f"store replay ({len(self._batch)} series)"

    def fetch_batch(self, *, start: pd.Timestamp, end: pd.Timestamp) -> FetchedBatch:
        b = self._batch
        lo, hi = utc(start).value, utc(end).value
        keep = (b.ts >= lo) & (b.ts < hi)
        ends = np.concatenate([[0], np.cumsum(keep)])
        counts = ends[b.offsets[1:]] - ends[b.offsets[:-1]]
        has = counts > 0
        return FetchedBatch(
            names=[n for n, k in zip(b.names, has, strict=True) if k],
            labels=[dict(lab) for lab, k in zip(b.labels, has, strict=True) if k],
            ts=b.ts[keep],
            values=b.values[keep],
            offsets=np.concatenate([[0], np.cumsum(counts[has])]),
        )


@dataclass
class ReplayDay:
    day: str  # YYYY-MM-DD (UTC)
    anomalies: int = 0
    incidents: int = 0
    messages: int = 0
    firing: int = 0
    resolved: int = 0
    labels: int = 0  # labelled windows that start this day
    labels_caught: int = 0  # of those, how many an incident overlaps

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class ReplayIncident:
    id: int
    start: pd.Timestamp
    end: pd.Timestamp
    peak: pd.Timestamp | None
    type: str | None
    title: str
    metrics: list[str]
    messages: int = 0
    severity: str | None = None
    #: the monitor whose metrics the incident holds
    monitor: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "start": _iso(self.start),
            "end": _iso(self.end),
            "peak": _iso(self.peak) if self.peak is not None else None,
            "type": self.type,
            "title": self.title,
            "metrics": list(self.metrics),
            "messages": self.messages,
            "severity": self.severity,
            "monitor": self.monitor,
        }


@dataclass
class ReplayMessage:
    id: int
    at: pd.Timestamp
    channel: str
    kind: str
    severity: str
    subject: str
    text: str
    incident_id: int | None
    chart_png: bytes | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": _iso(self.at),
            "channel": self.channel,
            "kind": self.kind,
            "severity": self.severity,
            "subject": self.subject,
            "incident_id": self.incident_id,
        }


@dataclass
class ReplayReport:
    start: pd.Timestamp
    end: pd.Timestamp
    monitors: list[str]
    ticks: int = 0
    errors: list[str] = field(default_factory=list)
    days: list[ReplayDay] = field(default_factory=list)
    incidents: list[ReplayIncident] = field(default_factory=list)
    messages: list[ReplayMessage] = field(default_factory=list)
    anomalies: int = 0

    @property
    def firing(self) -> int:
        return sum(d.firing for d in self.days)

    def summary_line(self) -> str:
        return (
            f"REPLAY days={len(self.days)} anomalies={self.anomalies} incidents={len(self.incidents)}"
            f" messages={len(self.messages)} firing={self.firing}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "from": _iso(self.start),
            "to": _iso(self.end),
            "monitors": list(self.monitors),
            "ticks": self.ticks,
            "errors": list(self.errors),
            "days": [d.to_dict() for d in self.days],
            "incidents": [i.to_dict() for i in self.incidents],
            "messages": [m.to_dict() for m in self.messages],
            "totals": {
                "anomalies": self.anomalies,
                "incidents": len(self.incidents),
                "messages": len(self.messages),
                "firing": self.firing,
            },
        }


def _iso(ts: pd.Timestamp) -> str:
    return utc(ts).strftime("%Y-%m-%dT%H:%M:%SZ")


def load_replay_monitors(path: Path | str) -> Any:
    """A monitors file read for a replay. A replay contacts no source and no channel, so a ``${NAME}``
    without a default that is not set (a password) reads as ``replay`` instead of failing."""
    import re

    from telewatch.monitors.config import read_yaml

    data, lines = read_yaml(path)
    environ = dict(os.environ)
    text = Path(path).read_text(encoding="utf-8")
    for name in re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", text):
        environ.setdefault(name, "replay")
    return parse_monitors(data, source=str(path), lines=lines, environ=environ)


def default_monitor(*, group: str | None = None, every: timedelta = timedelta(minutes=15)) -> MonitorSpec:
    """The monitor a replay runs without a monitors file: every stored metric (or ``group``), the
    default detector and alert settings, told to the replay channel."""
    return MonitorSpec.model_validate(
        {
            "name": "default",
            "source": {"type": "store", "group": group},
            "schedule": {"every": every},
            "history": timedelta(days=14),
            "channels": [REPLAY_CHANNEL],
        }
    )


def _replay_alerting(config: Any | None, specs: Sequence[MonitorSpec]) -> tuple[Any, list[MonitorSpec]]:
    """The alerting configuration of the replay: ``config`` with a ``replay`` channel added (a webhook
    that is never called), which monitors without channels are told through."""
    from telewatch.alerts.config import AlertingConfig

    data = config.model_dump(mode="python", by_alias=True) if config is not None else {}
    channels = dict(data.get("channels") or {})
    channels.setdefault(REPLAY_CHANNEL, {"type": "webhook", "url": "http://127.0.0.1:9/replay"})
    data["channels"] = channels
    for name, channel in channels.items():  # secrets come back as SecretStr: unwrap for re-validation
        # every message keeps its chart: a replay is there to be looked at
        data["channels"][name] = {**_unwrap(channel), "send_chart": True}
    cfg = AlertingConfig.model_validate(data)
    out = [
        spec if spec.channels else spec.model_copy(update={"channels": [REPLAY_CHANNEL]}) for spec in specs
    ]
    return cfg, out


def _unwrap(value: Any) -> Any:
    from pydantic import SecretStr

    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, Mapping):
        return {k: _unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unwrap(v) for v in value]
    return value


def _wanted_names(spec: MonitorSpec) -> set[str] | None:
    """The metric names a monitor's source produces (``MonitorSpec.produced_names``); None for a
    ``store`` source (every stored metric); an empty set where the names come from the data (a SQL
    ``metric_column`` without ``metrics:``): nothing stored can be told to be that monitor's."""
    if getattr(spec.source, "type", "") == "store":
        return None
    names = spec.produced_names()
    return set() if names is None else names


def _load_batch(
    live: Store, spec: MonitorSpec, *, start: pd.Timestamp, end: pd.Timestamp
) -> tuple[FetchedBatch, list[repo.MetricInfo]]:
    """The stored points ``spec`` would have fetched in ``[start, end)``, as one batch."""
    cur = live.cursor()
    group = getattr(spec.source, "group", None) if getattr(spec.source, "type", "") == "store" else None
    metrics = repo.list_metrics(cur, group=group)
    names = _wanted_names(spec)
    logs_prefix = getattr(spec.source, "metric", None) if getattr(spec.source, "type", "") == "logs" else None
    chosen = []
    for m in metrics:
        if names is not None and m.name not in names and not (logs_prefix and m.name.startswith(logs_prefix)):
            continue
        if spec.labels and any(m.labels.get(k) != v for k, v in spec.labels.items()):
            continue
        chosen.append(m)
    stamps, values, counts = [], [], []
    for m in chosen:
        s = repo.read_series(cur, m.id, start=start, end=end)
        stamps.append(np.asarray(pd.DatetimeIndex(s.index).as_unit("ns").asi8, dtype="int64"))
        values.append(s.to_numpy(dtype="float64"))
        counts.append(len(s))
    if not chosen:
        return FetchedBatch.empty(), []
    batch = FetchedBatch(
        names=[m.name for m in chosen],
        labels=[dict(m.labels) for m in chosen],
        ts=np.concatenate(stamps),
        values=np.concatenate(values),
        offsets=np.concatenate([[0], np.cumsum(counts)]),
    )
    return batch, chosen


def replay(
    live: Store,
    *,
    start: pd.Timestamp | str,
    end: pd.Timestamp | str,
    monitors: Sequence[MonitorSpec] | None = None,
    alerting: Any | None = None,
    every: timedelta | None = None,
    group: str | None = None,
    workdir: Path | str | None = None,
    console: Console | None = None,
) -> ReplayReport:
    """Replay ``monitors`` (default: :func:`default_monitor`) from ``start`` to ``end`` over the points
    in ``live``; nothing is sent and ``live`` is only read. ``every`` overrides each monitor's
    schedule. ``workdir`` keeps the scratch store (default: a temporary folder, removed after)."""
    from telewatch.services.alerting import form_digests, renderer_for
    from telewatch.services.monitor import AlertingSetup, run_monitor

    t0, t1 = utc(start), utc(end)
    if t1 <= t0:
        raise ValidationError(f"replay: --to ({_iso(t1)}) must be after --from ({_iso(t0)})")
    specs = list(monitors) if monitors else [default_monitor(group=group)]
    if every is not None:
        specs = [s.model_copy(update={"schedule": Schedule(every=every)}) for s in specs]
    config, specs = _replay_alerting(alerting, specs)
    report = ReplayReport(start=t0, end=t1, monitors=[s.name for s in specs])
    # the scratch store lives in memory-backed /dev/shm where there is one: a replay commits thousands
    # of small transactions, and nothing of it needs to outlive the process
    shm = Path("/dev/shm")
    tmp_parent = str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None
    holder = (
        tempfile.TemporaryDirectory(prefix="telewatch-replay-", dir=tmp_parent) if workdir is None else None
    )
    folder = Path(holder.name if holder is not None else str(workdir))
    folder.mkdir(parents=True, exist_ok=True)
    scratch_path = folder / "replay.duckdb"
    if scratch_path.exists():
        scratch_path.unlink()
    try:
        with Store(scratch_path) as scratch:
            sources: dict[str, StoreReplaySource] = {}
            for spec in specs:
                batch, _ = _load_batch(live, spec, start=t0 - pd.Timedelta(spec.history), end=t1)
                if not len(batch):
                    report.errors.append(f"{spec.name}: no stored series matches what this monitor fetches")
                    continue
                sources[spec.name] = StoreReplaySource(batch)
            specs = [s for s in specs if s.name in sources]
            _copy_metrics_meta(live, scratch)
            plan = [
                (tick, spec)
                for spec in specs
                for tick in spec.schedule.ticks_between(
                    (t0 - pd.Timedelta(microseconds=1)).to_pydatetime(), t1.to_pydatetime(), limit=10**7
                )
            ]
            plan.sort(key=lambda p: (p[0], p[1].name))
            setup = AlertingSetup(config=config, deliver=False)
            # nothing is sent, but digests (a rule's digest, quiet hours) are formed when due, as the
            # delivery would form them: the messages listed are those a channel would get, at the
            # time it would get them
            renderer = renderer_for(config)
            with Progress(console=console or Console(stderr=True), transient=True) as progress:
                task = progress.add_task("replaying ticks", total=len(plan))
                for tick, spec in plan:
                    result = run_monitor(
                        spec,
                        store=scratch,
                        now=pd.Timestamp(tick),
                        source=sources[spec.name],
                        alerting=setup,
                        holder="replay",
                    )
                    form_digests(scratch, config, pd.Timestamp(tick), renderer)
                    report.ticks += 1
                    if result.status == "error" and len(report.errors) < 20:
                        report.errors.append(f"{spec.name} @ {_iso(pd.Timestamp(tick))}: {result.error}")
                    progress.advance(task)
            _collect(scratch, live, report)
    finally:
        if holder is not None:
            holder.cleanup()
    return report


def _copy_metrics_meta(live: Store, scratch: Store) -> None:
    """Units, owners and groups of the live metrics, so the scratch store's alerts say the same."""
    with scratch.transaction() as tx:
        for m in repo.list_metrics(live.cursor()):
            repo.upsert_metric(
                tx,
                name=m.name,
                labels=m.labels,
                unit=m.unit,
                owner=m.owner,
                group=m.group,
                description=m.description,
            )


def _collect(scratch: Store, live: Store, report: ReplayReport) -> None:
    cur = scratch.cursor()
    anomaly_starts = anomalies_repo.anomaly_starts(cur)
    report.anomalies = len(anomaly_starts)
    names: dict[int, list[str]] = {}
    for iid, name, member_labels in monitors_repo.anomalous_members(cur):
        names.setdefault(iid, []).append(series_key(name, member_labels))
    incidents = {
        iid: ReplayIncident(
            id=iid,
            start=start,
            end=end,
            peak=peak,
            type=kind,
            title=title,
            metrics=names.get(iid, []),
            monitor=monitor,
        )
        for iid, start, end, kind, title, peak, monitor in monitors_repo.replay_incidents(cur)
    }
    key_incident = monitors_repo.alert_incidents(cur)
    for sent in monitors_repo.notifications(cur):
        incident = next((key_incident[k] for k in sent.alert_keys if k in key_incident), None)
        msg = ReplayMessage(
            id=sent.id,
            at=sent.created_at,
            channel=sent.channel,
            kind=sent.kind,
            severity=sent.severity,
            subject=sent.subject,
            text=sent.text,
            incident_id=incident,
            chart_png=sent.chart_png,
        )
        report.messages.append(msg)
        if incident is not None and incident in incidents:
            incidents[incident].messages += 1
            if msg.kind != "resolved" and incidents[incident].severity != "critical":
                incidents[incident].severity = msg.severity
    report.incidents = list(incidents.values())

    days: dict[str, ReplayDay] = {}
    for date in pd.date_range(
        report.start.floor("D"), (report.end - pd.Timedelta(microseconds=1)).floor("D"), freq="D"
    ):
        days[f"{date:%Y-%m-%d}"] = ReplayDay(day=f"{date:%Y-%m-%d}")

    def day_of(ts: pd.Timestamp) -> ReplayDay | None:
        return days.get(f"{utc(ts):%Y-%m-%d}")

    for start_ts in anomaly_starts:
        d = day_of(start_ts)
        if d is not None:
            d.anomalies += 1
    for inc in report.incidents:
        d = day_of(inc.start)
        if d is not None:
            d.incidents += 1
    for msg in report.messages:
        d = day_of(msg.at)
        if d is None:
            continue
        d.messages += 1
        if msg.kind == "resolved":
            d.resolved += 1
        else:
            d.firing += 1
    labels = repo.read_label_windows(live.cursor())
    if len(labels):
        spans = [(i.start, i.end) for i in report.incidents]
        for _, lab in labels.iterrows():
            if str(lab.get("kind", "anomaly")) not in ("anomaly", "confirmed"):
                continue
            ls, le = utc(lab["start_ts"]), utc(lab["end_ts"])
            if le < report.start or ls >= report.end:
                continue
            d = day_of(ls)
            if d is None:
                continue
            d.labels += 1
            if any(s <= le and e >= ls for s, e in spans):
                d.labels_caught += 1
    report.days = list(days.values())


def write_messages(report: ReplayReport, folder: Path | str) -> list[Path]:
    """Each message the replay would have sent as ``NNNN-<kind>.txt`` (its plain text) and, with a
    chart, ``NNNN-<kind>.png``: what the on-call engineer would have seen."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for n, msg in enumerate(report.messages, start=1):
        stem = out / f"{n:04d}-{msg.at:%Y%m%d-%H%M}-{msg.kind}"
        stem.with_suffix(".txt").write_text(
            f"{msg.subject}\n[{msg.channel}, {msg.severity}, incident {msg.incident_id}]\n\n{msg.text}\n",
            encoding="utf-8",
        )
        written.append(stem.with_suffix(".txt"))
        if msg.chart_png:
            stem.with_suffix(".png").write_bytes(msg.chart_png)
            written.append(stem.with_suffix(".png"))
    return written
