"""Prometheus source against Debian's Prometheus 2.42 on loopback, scraping itself every second."""

from __future__ import annotations

import time

import httpx
import pandas as pd
import pytest

from support import wait_until
from support.prometheus import PrometheusServer
from telewatch.sources.base import SourceError, SourceState
from telewatch.sources.prometheus import PrometheusSource


@pytest.fixture(scope="module")
def scraped(prom_server: PrometheusServer) -> PrometheusServer:
    def has_points() -> bool:
        r = httpx.get(
            f"{prom_server.url}/api/v1/query", params={"query": "count_over_time(up[1m])"}, timeout=2
        )
        result = r.json()["data"]["result"]
        return bool(result) and float(result[0]["value"][1]) >= 6

    wait_until(has_points, timeout=30, what="six scrapes")
    return prom_server


def _now() -> pd.Timestamp:
    return pd.Timestamp.now(tz="UTC").floor("s")


def test_series_come_back_with_labels_and_exact_values(scraped: PrometheusServer) -> None:
    end = _now()
    src = PrometheusSource(url=scraped.url, query='up{job="prometheus"}', step=pd.Timedelta("1s"))
    (up,) = src.fetch(start=end - pd.Timedelta(seconds=3), end=end)
    assert up.name == "up"
    assert up.labels == {"instance": f"127.0.0.1:{scraped.port}", "job": "prometheus"}
    assert up.values.tolist() == [1.0, 1.0, 1.0]
    assert up.values.index.tolist() == list(pd.date_range(end - pd.Timedelta(seconds=3), periods=3, freq="s"))
    # the same numbers the HTTP API gives for an instant query
    build = PrometheusSource(url=scraped.url, query="prometheus_build_info", step=pd.Timedelta("1s"))
    (info,) = build.fetch(start=end - pd.Timedelta(seconds=2), end=end)
    assert info.labels["version"].startswith("2.42")
    assert set(info.values.tolist()) == {1.0}


def test_expression_without_a_name_uses_the_configured_one(scraped: PrometheusServer) -> None:
    end = _now()
    src = PrometheusSource(
        url=scraped.url,
        query="sum by (job) (rate(prometheus_http_requests_total[30s]))",
        step=pd.Timedelta("1s"),
        name="http_rps",
    )
    out = src.fetch(start=end - pd.Timedelta(seconds=2), end=end)
    assert [(s.name, s.labels) for s in out] == [("http_rps", {"job": "prometheus"})]


def test_incremental_fetch_returns_only_new_points(scraped: PrometheusServer) -> None:
    src = PrometheusSource(url=scraped.url, query='up{job="prometheus"}', step=pd.Timedelta("1s"))
    t1 = _now()
    first, state = src.fetch_incremental(state=SourceState(), end=t1, lookback=pd.Timedelta(seconds=3))
    assert len(first[0].values) == 3
    again, state = src.fetch_incremental(state=state, end=t1)
    assert again == []
    time.sleep(2.1)
    t2 = t1 + pd.Timedelta(seconds=2)
    more, _ = src.fetch_incremental(state=state, end=t2)
    assert more[0].values.index.tolist() == [t1, t1 + pd.Timedelta(seconds=1)]


def test_bad_promql_is_refused_with_the_servers_reason(scraped: PrometheusServer) -> None:
    src = PrometheusSource(
        url=scraped.url, query="sum(up", step=pd.Timedelta("1s"), bearer_token="tok-123456"
    )
    with pytest.raises(SourceError, match="bad_data") as err:
        src.fetch(start=_now() - pd.Timedelta(seconds=2), end=_now())
    assert "tok-123456" not in str(err.value)


def test_dead_server_gives_a_clear_error_and_recovers(scraped: PrometheusServer) -> None:
    src = PrometheusSource(url=scraped.url, query="up", step=pd.Timedelta("1s"), timeout=2)
    scraped.stop()
    try:
        with pytest.raises(SourceError, match="cannot connect"):
            src.fetch(start=_now() - pd.Timedelta(seconds=2), end=_now())
    finally:
        scraped.start()
    end = _now()
    assert src.fetch(start=end - pd.Timedelta(seconds=30), end=end)  # the data on disk is back
