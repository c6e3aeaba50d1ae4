"""SNMP polling as a source (pysnmp 7, asyncio API), SNMP v2c.

Each poll reads the configured objects now: scalars with GET, tables with a walk (one series per row,
labelled by the row index or by the value of a ``label_oid`` column such as ``ifDescr``). A walk that
returns no row is an error naming the object and its OID, as a GET of a missing object is. Gauges
(CPU load, memory, temperature) are stored as read; counters (interface octets) become per-second
rates from the previous poll, kept in the monitor's cursor. A counter that went down wrapped around
its width (2^32 for Counter32, 2^64 for Counter64) when the wrapped delta is plausible (less than half
the width); otherwise the device restarted and that interval has no value.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

import pandas as pd

from telewatch.core.errors import ConfigError
from telewatch.sources.base import FetchedSeries, Source, SourceState, make_series, series_key, utc

T = TypeVar("T")

#: Well-known objects, usable by name in ``oid``.
KNOWN_OIDS = {
    "sysUpTime": "1.3.6.1.2.1.1.3.0",
    "hrProcessorLoad": "1.3.6.1.2.1.25.3.3.1.2",
    "ssCpuIdle": "1.3.6.1.4.1.2021.11.11.0",
    "memTotalReal": "1.3.6.1.4.1.2021.4.5.0",
    "memAvailReal": "1.3.6.1.4.1.2021.4.6.0",
    "lmTempSensorsValue": "1.3.6.1.4.1.2021.13.16.2.1.3",
    "ifDescr": "1.3.6.1.2.1.2.2.1.2",
    "ifName": "1.3.6.1.2.1.31.1.1.1.1",
    "ifInOctets": "1.3.6.1.2.1.2.2.1.10",
    "ifOutOctets": "1.3.6.1.2.1.2.2.1.16",
    "ifHCInOctets": "1.3.6.1.2.1.31.1.1.1.6",
    "ifHCOutOctets": "1.3.6.1.2.1.31.1.1.1.10",
    "ifInErrors": "1.3.6.1.2.1.2.2.1.14",
}


@dataclass(frozen=True)
class SnmpObject:
    """One polled object: a scalar (``walk=False``) or a table column (``walk=True``).

    ``kind``: ``auto`` (from the SNMP type: Counter32/Counter64 are counters), ``gauge``, ``counter32``
    or ``counter64``. ``rate`` (default: true for counters) turns a counter into a per-second rate;
    ``scale`` multiplies the value (8 turns octets into bits).
    """

    name: str
    oid: str
    walk: bool = False
    kind: str = "auto"
    rate: bool | None = None
    scale: float = 1.0
    label: str = "index"
    label_oid: str | None = None
    labels: dict[str, str] = field(default_factory=dict)


def resolve_oid(oid: str) -> str:
    """A numeric OID from a dotted OID or a known name (``ifHCInOctets``, ``ifHCInOctets.2``).

    >>> resolve_oid("ifHCInOctets.2")
    '1.3.6.1.2.1.31.1.1.1.6.2'
    >>> resolve_oid(".1.3.6.1.2.1.1.3.0")
    '1.3.6.1.2.1.1.3.0'
    """
    head, _, rest = oid.strip().lstrip(".").partition(".")
    if head in KNOWN_OIDS:
        return KNOWN_OIDS[head] + ("." + rest if rest else "")
    text = oid.strip().lstrip(".")
    if not all(p.isdigit() for p in text.split(".")):
        raise ConfigError(
            f"unknown SNMP object {oid!r}: give a numeric OID or one of {', '.join(KNOWN_OIDS)}"
        )
    return text


def counter_delta(previous: int, current: int, bits: int) -> int | None:
    """Increase of a counter of ``bits`` width, across one wrap; None when it was reset.

    >>> counter_delta(4294967000, 200, 32)
    496
    >>> counter_delta(10, 25, 64)
    15
    >>> counter_delta(1_000, 3, 32) is None  # it went down by far more than a wrap explains: a restart
    True
    """
    if current >= previous:
        return current - previous
    width = 1 << bits
    wrapped = current + width - previous
    return wrapped if wrapped < width // 2 else None


class SnmpSource(Source):
    """Poll an SNMP agent (v2c community)."""

    kind: ClassVar[str] = "snmp"

    def __init__(
        self,
        *,
        host: str,
        port: int = 161,
        community: str = "public",
        objects: Sequence[SnmpObject],
        timeout: float = 2.0,
        retries: int = 1,
        labels: dict[str, str] | None = None,
    ) -> None:
        if not objects:
            raise ConfigError("an SNMP source needs at least one object to poll")
        self.host = host
        self.port = port
        self.community = community
        self.objects = list(objects)
        self.timeout = timeout
        self.retries = retries
        self.labels = dict(labels or {"device": host})

    def secrets(self) -> list[str]:
        return [self.community] if self.community else []

    def describe(self) -> str:
        return f"snmp {self.host}:{self.port}"

    # -- protocol -------------------------------------------------------------------------------
    async def _poll_async(self) -> list[tuple[SnmpObject, str, str, int | float, str]]:
        """(object, row index, label, value, snmp type) for every polled value."""
        from pysnmp.hlapi.v3arch.asyncio import (
            CommunityData,
            ContextData,
            ObjectIdentity,
            ObjectType,
            SnmpEngine,
            UdpTransportTarget,
            get_cmd,
            walk_cmd,
        )

        engine = SnmpEngine()
        try:
            target = await UdpTransportTarget.create(
                (self.host, self.port), timeout=self.timeout, retries=self.retries
            )
            auth = CommunityData(self.community, mpModel=1)
            out: list[tuple[SnmpObject, str, str, int | float, str]] = []

            async def walk(oid: str) -> list[tuple[str, Any]]:
                rows: list[tuple[str, Any]] = []
                async for err_ind, err_status, _idx, var_binds in walk_cmd(
                    engine,
                    auth,
                    target,
                    ContextData(),
                    ObjectType(ObjectIdentity(oid)),
                    lexicographicMode=False,
                    lookupMib=False,
                ):
                    if err_ind:
                        raise self.error(f"walk {oid}: {err_ind}")
                    if err_status:
                        raise self.error(f"walk {oid}: {err_status.prettyPrint()}")
                    for name, value in var_binds:
                        rows.append((str(name)[len(oid) + 1 :], value))
                return rows

            for obj in self.objects:
                oid = resolve_oid(obj.oid)
                if obj.walk:
                    rows = await walk(oid)
                    if not rows:  # a wrong OID, a scalar walked, or a table this agent does not fill
                        raise self.error(
                            f"walk of {obj.name!r} (OID {oid}) returned no rows: the agent has nothing under"
                            " that OID for this community (check the OID; a scalar needs `walk: false`)"
                        )
                    names: dict[str, str] = {}
                    if obj.label_oid:
                        names = {
                            idx: str(v.prettyPrint()) for idx, v in await walk(resolve_oid(obj.label_oid))
                        }
                    for idx, value in rows:
                        out.append((obj, idx, names.get(idx, idx), _number(value), type(value).__name__))
                else:
                    err_ind, err_status, _idx, var_binds = await get_cmd(
                        engine, auth, target, ContextData(), ObjectType(ObjectIdentity(oid)), lookupMib=False
                    )
                    if err_ind:
                        raise self.error(f"get {oid}: {err_ind}")
                    if err_status:
                        raise self.error(f"get {oid}: {err_status.prettyPrint()}")
                    value = var_binds[0][1]
                    kind = type(value).__name__
                    if kind in {"NoSuchObject", "NoSuchInstance", "EndOfMibView"}:
                        raise self.error(f"get {oid}: the agent has no such object")
                    out.append((obj, "", "", _number(value), kind))
            return out
        finally:
            engine.close_dispatcher()

    def poll(self) -> list[tuple[SnmpObject, str, str, int | float, str]]:
        """Read every configured object now (raises :class:`SourceError` when the agent does not answer)."""
        try:
            return _run_coroutine(self._poll_async)
        except Exception as exc:
            if type(exc).__name__ == "SourceError":
                raise
            raise self.error("poll failed", exc) from None

    # -- Source ---------------------------------------------------------------------------------
    def _series_labels(self, obj: SnmpObject, label: str) -> dict[str, str]:
        labels = {**self.labels, **obj.labels}
        if obj.walk:
            labels[obj.label] = label
        return labels

    def fetch(self, *, start: pd.Timestamp, end: pd.Timestamp) -> list[FetchedSeries]:
        """Poll now; gauges are returned at ``end`` (counters need two polls: use fetch_incremental)."""
        stamp = utc(end)
        out = []
        for obj, _idx, label, value, snmp_type in self.poll():
            if _counter_bits(obj, snmp_type) and obj.rate is not False:
                continue  # a rate needs two polls
            out.append(
                FetchedSeries(
                    obj.name, self._series_labels(obj, label), make_series([stamp], [value * obj.scale])
                )
            )
        return out

    def fetch_incremental(
        self, *, state: SourceState, end: pd.Timestamp, lookback: pd.Timedelta | None = None
    ) -> tuple[list[FetchedSeries], SourceState]:
        """Poll once for the tick at ``end``; a tick already polled returns nothing (idempotent)."""
        stamp = utc(end)
        cursor = dict(state.cursor)
        last_poll = cursor.get("polled_at")
        if last_poll is not None and pd.Timestamp(last_poll) >= stamp:
            return [], state
        previous: dict[str, list[Any]] = dict(cursor.get("counters", {}))
        counters: dict[str, list[Any]] = {}
        out: list[FetchedSeries] = []
        last_seen = dict(state.last_seen)
        for obj, _idx, label, value, snmp_type in self.poll():
            labels = self._series_labels(obj, label)
            key = series_key(obj.name, labels)
            bits = _counter_bits(obj, snmp_type)
            rate = obj.rate if obj.rate is not None else bool(bits)
            if bits and rate:
                counters[key] = [stamp.isoformat(), int(value), bits]
                prev = previous.get(key)
                if prev is None:
                    continue
                seconds = (stamp - pd.Timestamp(prev[0])).total_seconds()
                delta = counter_delta(int(prev[1]), int(value), bits)
                if seconds <= 0:
                    continue
                result = float("nan") if delta is None else delta / seconds * obj.scale
            else:
                result = float(value) * obj.scale
            out.append(FetchedSeries(obj.name, labels, make_series([stamp], [result])))
            last_seen[key] = stamp
        cursor["counters"] = counters
        cursor["polled_at"] = stamp.isoformat()
        return out, SourceState(last_seen=last_seen, cursor=cursor)


def _run_coroutine(factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion from synchronous code, also when this thread already runs an event
    loop (a notebook, an async web server): then in a short-lived thread with its own loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(factory())
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = asyncio.run(factory())
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=target, name="telewatch-snmp", daemon=True)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def _counter_bits(obj: SnmpObject, snmp_type: str) -> int:
    if obj.kind == "counter32":
        return 32
    if obj.kind == "counter64":
        return 64
    if obj.kind == "auto":
        return {"Counter32": 32, "Counter64": 64}.get(snmp_type, 0)
    return 0


def _number(value: Any) -> int | float:
    try:
        return int(value)
    except (TypeError, ValueError):
        try:
            return float(str(value.prettyPrint()))
        except (TypeError, ValueError):
            return float("nan")
