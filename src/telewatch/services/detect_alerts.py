"""Use-case: tell the alert rules about what ``telewatch detect`` or an upload just found.

Every path can alert: a detection over stored data (``telewatch detect``, ``POST /api/detect/run``, an
upload) hands its anomalies to the configured alert rules, as a monitor's tick does — but only those
that reach into the last ``within`` (default an hour) before ``now``: a backfill of last month, or a
re-detection of history, records its anomalies without paging about them. A change too small to
matter (a share off by less than a percentage point: :mod:`telewatch.postrules.material`) is not
paged either.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import pandas as pd

from telewatch.services.alert_context import firing_candidate, is_ongoing
from telewatch.services.detection import AnomalyWindow
from telewatch.store import repo
from telewatch.store.db import Store

#: The ``monitor`` field of the alerts a detection run submits (rules can match it).
DETECT_MONITOR = "detect"


def alert_recent(
    store: Store,
    anomalies: Sequence[AnomalyWindow],
    *,
    config: Any,
    now: pd.Timestamp | None = None,
    within: timedelta = timedelta(hours=1),
    deliver: bool = True,
) -> tuple[int, int]:
    """Submit the anomalies ending within ``within`` of ``now`` to the alert rules of ``config``
    (an ``AlertingConfig``) and deliver the outbox. Returns (candidates submitted, messages sent)."""
    from telewatch.services import alerting

    now = pd.Timestamp.now(tz="UTC") if now is None else pd.Timestamp(now)
    now = now.tz_localize("UTC") if now.tzinfo is None else now.tz_convert("UTC")
    recent = [a for a in anomalies if a.end >= now - pd.Timedelta(within)]
    cur = store.cursor()
    candidates = []
    for a in recent:
        info = repo.get_metric(cur, a.metric_id)
        candidate = firing_candidate(
            cur,
            key=f"{DETECT_MONITOR}:{info.display_name}:{a.start.isoformat()}",
            monitor=DETECT_MONITOR,
            metric_id=a.metric_id,
            metric=info.name,
            labels=info.labels,
            group=info.group,
            owner=info.owner,
            start=a.start,
            end=a.end,
            value=a.value,
            expected=a.expected,
            lower=a.lower,
            upper=a.upper,
            score=a.peak_score,
            severity="warning",
            recovered=info.last_ts is not None and not is_ongoing(a.end, info.last_ts),
            data_end=info.last_ts,
        )
        if candidate is not None:  # None: too small a change to matter (a share off by under a point)
            candidates.append(candidate)
    if not candidates:
        return 0, 0
    alerting.submit_alerts(store, candidates=candidates, rules=config, config=config, now=now)
    sent = len(alerting.deliver_outbox(store, channels=config, now=now).sent) if deliver else 0
    return len(candidates), sent


def alert_if_configured(
    store: Store, anomalies: Sequence[AnomalyWindow], *, settings: Any
) -> tuple[int, int] | None:
    """:func:`alert_recent` with the service's alerting configuration (``TELEWATCH_ALERTING_CONFIG``)
    and window (``TELEWATCH_DETECT_ALERT_WINDOW``); None when no alerting is configured."""
    from telewatch.alerts.config import load_alerting_config

    path = getattr(settings, "alerting_config", None)
    if path is None or not anomalies:
        return None
    return alert_recent(
        store, anomalies, config=load_alerting_config(path), within=settings.detect_alert_window
    )
