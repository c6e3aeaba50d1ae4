"""Prometheus as a source: PromQL range queries over the HTTP API (``/api/v1/query_range``).

Each series the query returns becomes one metric: its name is the ``__name__`` label (or the
monitor's ``name`` when the expression has none, e.g. ``rate(...)``), the other labels are its slice.
Timestamps are aligned to multiples of ``step`` so that incremental runs land on the same grid.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import httpx
import pandas as pd

from telewatch.sources.base import FetchedSeries, Source, make_series, utc

MAX_POINTS_PER_QUERY = 10_000  # Prometheus refuses more than 11,000 points per series


class PrometheusSource(Source):
    """Range-query a Prometheus server.

    ``bearer_token`` or ``username``/``password`` authenticate; ``headers`` are sent as they are.
    """

    kind: ClassVar[str] = "prometheus"

    def __init__(
        self,
        *,
        url: str,
        query: str,
        step: pd.Timedelta = pd.Timedelta(minutes=1),
        name: str | None = None,
        timeout: float = 30.0,
        bearer_token: str | None = None,
        username: str | None = None,
        password: str | None = None,
        headers: dict[str, str] | None = None,
        verify_tls: bool = True,
    ) -> None:
        if not query.strip():
            from telewatch.core.errors import ConfigError

            raise ConfigError("a Prometheus source needs a PromQL `query`")
        self.url = url.rstrip("/")
        self.query = query
        self.step = pd.Timedelta(step)
        self.name = name
        self.timeout = float(timeout)
        self.bearer_token = bearer_token
        self.username = username
        self.password = password
        self.headers = dict(headers or {})
        self.verify_tls = verify_tls

    def secrets(self) -> list[str]:
        return [s for s in (self.bearer_token, self.password, *self.headers.values()) if s]

    def describe(self) -> str:
        return f"prometheus {httpx.URL(self.url).copy_with(username=None, password=None)}"

    def _client(self) -> httpx.Client:
        headers = dict(self.headers)
        if self.bearer_token:
            headers["Authorization"] = f"Bearer {self.bearer_token}"
        auth = (self.username, self.password or "") if self.username else None
        return httpx.Client(timeout=self.timeout, headers=headers, auth=auth, verify=self.verify_tls)

    def _query_range(
        self, client: httpx.Client, start: float, end: float, step: float
    ) -> list[dict[str, Any]]:
        params = {"query": self.query, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:g}s"}
        try:
            resp = client.get(f"{self.url}/api/v1/query_range", params=params)
        except httpx.TimeoutException as exc:
            raise self.error(f"no answer within the timeout ({self.timeout:g} s)", exc) from None
        except httpx.HTTPError as exc:
            raise self.error("cannot connect", exc) from None
        try:
            body = resp.json()
        except ValueError:
            raise self.error(f"HTTP {resp.status_code}: not a Prometheus API answer") from None
        if resp.status_code != 200 or body.get("status") != "success":
            raise self.error(
                f"the query failed (HTTP {resp.status_code}, {body.get('errorType', '?')}): {body.get('error', '')}"
            )
        data = body.get("data") or {}
        if data.get("resultType") != "matrix":
            raise self.error(f"expected a range vector (matrix), got {data.get('resultType')!r}")
        return list(data.get("result") or [])

    def fetch(self, *, start: pd.Timestamp, end: pd.Timestamp) -> list[FetchedSeries]:
        step = self.step.total_seconds()
        if step <= 0:
            raise self.error("step must be positive")
        first = math.ceil(utc(start).timestamp() / step) * step
        last_excl = utc(end).timestamp()
        collected: dict[tuple[str, tuple[tuple[str, str], ...]], list[tuple[float, str]]] = {}
        with self._client() as client:
            chunk_start = first
            while chunk_start < last_excl:
                chunk_end = min(chunk_start + step * (MAX_POINTS_PER_QUERY - 1), last_excl - 1e-3)
                if chunk_end < chunk_start:
                    break
                for item in self._query_range(client, chunk_start, chunk_end, step):
                    labels = dict(item.get("metric") or {})
                    name = labels.pop("__name__", None) or self.name or "value"
                    if self.name and name != self.name and "__name__" not in (item.get("metric") or {}):
                        name = self.name
                    key = (name, tuple(sorted(labels.items())))
                    collected.setdefault(key, []).extend((float(t), v) for t, v in item.get("values") or [])
                chunk_start = chunk_start + step * MAX_POINTS_PER_QUERY
        out = []
        for (name, label_items), pairs in sorted(collected.items()):
            values = make_series([t for t, _ in pairs], [v for _, v in pairs], unit="s")
            values = values[(values.index >= utc(start)) & (values.index < utc(end))]
            out.append(FetchedSeries(name=name, labels=dict(label_items), values=values))
        return out
