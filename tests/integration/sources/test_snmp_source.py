"""SNMP source (pysnmp) against Debian's net-snmp agent on a UDP loopback port."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from support.snmpd import BASE_OID, SnmpAgent
from telewatch.scheduler.jobs import check_monitors, load_config
from telewatch.services.monitor import read_state
from telewatch.sources.base import SourceError, SourceState
from telewatch.sources.snmp import SnmpObject, SnmpSource
from telewatch.store.db import Store

T0 = pd.Timestamp("2026-03-01 00:00", tz="UTC")
MINUTE = pd.Timedelta(minutes=1)


def _source(agent: SnmpAgent, **kw: object) -> SnmpSource:
    objects = [
        SnmpObject(name="cpu_load", oid=f"{BASE_OID}.1.1.0", kind="gauge"),
        SnmpObject(name="temperature_c", oid=f"{BASE_OID}.1.2.0"),
        SnmpObject(name="if_in_bps", oid=f"{BASE_OID}.2", walk=True, scale=8, label="ifindex"),
        SnmpObject(name="if_out_bps", oid=f"{BASE_OID}.3.1.0", scale=8),
    ]
    return SnmpSource(host="127.0.0.1", port=agent.port, community=agent.community, objects=objects, **kw)  # type: ignore[arg-type]


def test_gauges_and_counter_rates_with_32_and_64_bit_wrap(snmp_agent: SnmpAgent) -> None:
    agent = snmp_agent
    agent.set_values(
        {
            "1.1.0": ("gauge", 37),
            "1.2.0": ("integer", 61),
            "2.1": ("counter", 4_294_967_000),  # Counter32 near its top
            "2.2": ("counter", 1_000),
            "3.1.0": ("counter64", 18_446_744_073_709_551_000),  # Counter64 near its top
        }
    )
    src = _source(agent)
    first, state = src.fetch_incremental(state=SourceState(), end=T0)
    # gauges right away; counters need a previous poll
    assert {s.key: s.values.tolist() for s in first} == {
        "cpu_load{device=127.0.0.1}": [37.0],
        "temperature_c{device=127.0.0.1}": [61.0],
    }
    again, same = src.fetch_incremental(state=state, end=T0)  # the same tick again: nothing, no poll
    assert again == []
    assert same is state
    agent.set_values(
        {
            "1.1.0": ("gauge", 95),
            "1.2.0": ("integer", 62),
            "2.1": ("counter", 5_704),  # wrapped: 296 + 5704 = 6000 octets
            "2.2": ("counter", 7_000),  # 6000 octets
            "3.1.0": ("counter64", 1_000),  # wrapped: 616 + 1000 = 1616 octets
        }
    )
    second, state = src.fetch_incremental(state=state, end=T0 + MINUTE)
    got = {s.key: s.values.tolist() for s in second}
    assert got["cpu_load{device=127.0.0.1}"] == [95.0]
    assert got["if_in_bps{device=127.0.0.1,ifindex=1}"] == [6000 * 8 / 60]
    assert got["if_in_bps{device=127.0.0.1,ifindex=2}"] == [6000 * 8 / 60]
    assert got["if_out_bps{device=127.0.0.1}"] == [1616 * 8 / 60]
    assert all(s.values.index[0] == T0 + MINUTE for s in second)
    # a counter that drops by more than half its width means the device restarted: no value
    agent.set_values(
        {
            "1.1.0": ("gauge", 1),
            "1.2.0": ("integer", 1),
            "2.1": ("counter", 3),
            "2.2": ("counter", 7_600),
            "3.1.0": ("counter64", 2_000),
        }
    )
    third, _ = src.fetch_incremental(state=state, end=T0 + 2 * MINUTE)
    got = {s.key: s.values.tolist() for s in third}
    assert got["if_in_bps{device=127.0.0.1,ifindex=2}"] == [600 * 8 / 60]
    assert pd.isna(got["if_in_bps{device=127.0.0.1,ifindex=1}"][0])


def test_real_mib_objects_of_the_host(snmp_agent: SnmpAgent) -> None:
    src = SnmpSource(
        host="127.0.0.1",
        port=snmp_agent.port,
        community=snmp_agent.community,
        objects=[
            SnmpObject(
                name="if_in_octets",
                oid="ifInOctets",
                walk=True,
                label="interface",
                label_oid="ifDescr",
                rate=False,
            )
        ],
    )
    out = src.fetch(start=T0, end=T0 + MINUTE)
    assert any(s.labels["interface"] == "lo" for s in out)  # named by ifDescr, read from the host's IF-MIB


def test_dead_agent_gives_a_clear_redacted_error_and_recovers(snmp_agent: SnmpAgent) -> None:
    snmp_agent.set_values(
        {"1.1.0": ("gauge", 5), "1.2.0": ("integer", 5), "2.1": ("counter", 1), "3.1.0": ("counter64", 1)}
    )
    src = _source(snmp_agent, timeout=0.3, retries=0)
    snmp_agent.stop()
    try:
        with pytest.raises(SourceError, match="No SNMP response") as err:
            src.fetch_incremental(state=SourceState(), end=T0)
        assert snmp_agent.community not in str(err.value)
    finally:
        snmp_agent.start()
    out, _ = src.fetch_incremental(state=SourceState(), end=T0)
    assert {s.name for s in out} == {"cpu_load", "temperature_c"}


def test_polling_works_inside_a_running_event_loop(snmp_agent: SnmpAgent) -> None:
    import asyncio
    import threading

    snmp_agent.set_values(
        {"1.1.0": ("gauge", 7), "1.2.0": ("integer", 8), "2.1": ("counter", 1), "3.1.0": ("counter64", 1)}
    )
    src = _source(snmp_agent)
    got: list[object] = []

    async def inside() -> None:  # e.g. called from an async web server's handler
        out, _ = src.fetch_incremental(state=SourceState(), end=T0)
        got.append(sorted(s.name for s in out))

    # a thread of our own, so that whatever loop the test runner's main thread holds does not matter
    thread = threading.Thread(target=lambda: asyncio.run(inside()))
    thread.start()
    thread.join(timeout=30)
    assert got == [["cpu_load", "temperature_c"]]


def test_a_walk_that_returns_nothing_is_an_error_naming_the_object_and_oid(
    snmp_agent: SnmpAgent, tmp_path: Path
) -> None:
    """A walk of a subtree the agent does not have (a wrong OID, a table this device does not fill) used to
    give no series and no word; it is an error naming the object and the OID, in the monitor's report too."""
    snmp_agent.set_values({"1.1.0": ("gauge", 5), "2.1": ("counter", 1)})
    missing = f"{BASE_OID}.77"  # nothing under it; the agent's walk ends at once
    src = SnmpSource(
        host="127.0.0.1",
        port=snmp_agent.port,
        community=snmp_agent.community,
        objects=[
            SnmpObject(name="cpu_load", oid=f"{BASE_OID}.1.1.0", kind="gauge"),
            SnmpObject(name="fan_rpm", oid=missing, walk=True, label="fan"),
        ],
    )
    expected = f"walk of 'fan_rpm' (OID {missing.lstrip('.')}) returned no rows"
    with pytest.raises(SourceError, match=re.escape(expected)) as err:
        src.fetch_incremental(state=SourceState(), end=T0)
    assert str(err.value).startswith(f"snmp 127.0.0.1:{snmp_agent.port}: ")
    assert snmp_agent.community not in str(err.value)

    # the same object walked where the agent has rows is fine
    ok = SnmpSource(
        host="127.0.0.1",
        port=snmp_agent.port,
        community=snmp_agent.community,
        objects=[SnmpObject(name="if_in", oid=f"{BASE_OID}.2", walk=True, rate=False)],
    )
    assert [s.key for s in ok.fetch(start=T0, end=T0 + MINUTE)] == ["if_in{device=127.0.0.1,index=1}"]

    # a monitor's tick reports it (status error, the object and OID in the report and the stored state)
    path = tmp_path / "monitors.yaml"
    path.write_text(
        f"""
monitors:
  - name: fans
    source:
      type: snmp
      host: 127.0.0.1
      port: {snmp_agent.port}
      community: {snmp_agent.community}
      objects:
        - {{name: cpu_load, oid: "{BASE_OID}.1.1.0", kind: gauge}}
        - {{name: fan_rpm, oid: "{missing}", walk: true, label: fan}}
    schedule: {{every: 1m}}
"""
    )
    with Store(tmp_path / "tw.duckdb") as store:
        (report,) = check_monitors(load_config(path), store=store, now=T0)
        assert report.status == "error"
        assert expected in (report.error or "")
        assert expected in (read_state(store, "fans").error or "")
