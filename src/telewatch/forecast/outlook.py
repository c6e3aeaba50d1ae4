"""Incident outlook: the chance of an incident in a group during the next hour, and what it rests on.

Two things are combined, and both are stated:

* **How often this group has incidents.** Anomalies of the group's metrics (table ``anomalies``) that
  start within ``merge`` of each other count as one incident. The long-run rate comes from the last
  ``lookback`` (7 days by default); it is updated with the last ``recent`` hours as a Gamma-Poisson
  prior worth ``prior_hours`` of observation, so a burst of recent anomalies raises the rate without
  one quiet week hiding it. The chance of at least one incident in the next hour is then
  ``1 - exp(-rate)``.
* **What the forecasts say.** Each predicted limit breach in the next hour carries its own chance; the
  chance that at least one happens, taken as independent, is ``1 - prod(1 - p)``.

The outlook is ``1 - (1 - p_rate) * (1 - p_breach)``: low below 10 %, elevated below 40 %, high above.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from telewatch.core.errors import ValidationError
from telewatch.forecast.breach import PredictedBreach


@dataclass(frozen=True)
class IncidentOutlook:
    """The chance of an incident in ``group`` in the hour after ``at``, and its basis."""

    group: str
    at: pd.Timestamp
    probability: float
    level: str  # low, elevated, high
    rate_per_hour: float
    probability_from_rate: float
    probability_from_forecast: float
    incidents_lookback: int
    incidents_recent: int
    anomalies_last_hour: int
    breaches: tuple[PredictedBreach, ...]
    basis: tuple[str, ...] = field(default_factory=tuple)

    @property
    def statement(self) -> str:
        """The outlook in one plain sentence."""
        return (
            f"Chance of an incident in group '{self.group}' in the next hour: {self.probability:.0%}"
            f" ({self.level})."
        )


def incident_starts(
    anomaly_starts: Sequence[pd.Timestamp] | pd.Series, *, merge: pd.Timedelta
) -> list[pd.Timestamp]:
    """Start times of incidents: anomaly starts closer than ``merge`` to the previous one join it.

    >>> ts = pd.to_datetime(["2024-01-01 10:00", "2024-01-01 10:10", "2024-01-01 12:00"], utc=True)
    >>> [t.strftime("%H:%M") for t in incident_starts(pd.Series(ts), merge=pd.Timedelta("30min"))]
    ['10:00', '12:00']
    """
    starts = sorted(pd.Timestamp(t) for t in anomaly_starts)
    out: list[pd.Timestamp] = []
    last: pd.Timestamp | None = None
    for t in starts:
        if last is None or t - last > merge:
            out.append(t)
        last = t if last is None else max(last, t)
    return out


def incident_outlook(
    group: str,
    *,
    at: pd.Timestamp,
    anomaly_starts: Sequence[pd.Timestamp] | pd.Series,
    breaches: Sequence[PredictedBreach] = (),
    lookback: pd.Timedelta = pd.Timedelta(days=7),
    recent: pd.Timedelta = pd.Timedelta(hours=6),
    prior_hours: float = 24.0,
    merge: pd.Timedelta = pd.Timedelta(minutes=30),
    horizon: pd.Timedelta = pd.Timedelta(hours=1),
) -> IncidentOutlook:
    """Combine the group's recent incident rate with the predicted breaches (see the module docstring).

    >>> at = pd.Timestamp("2024-01-08 12:00", tz="UTC")
    >>> starts = [at - pd.Timedelta(days=d) for d in (1, 3, 5)]
    >>> o = incident_outlook("web", at=at, anomaly_starts=starts)
    >>> o.incidents_lookback, o.level, round(o.probability, 3)
    (3, 'low', 0.014)
    """
    if lookback <= pd.Timedelta(0) or recent <= pd.Timedelta(0) or horizon <= pd.Timedelta(0):
        raise ValidationError("lookback, recent and horizon must be positive durations")
    at = pd.Timestamp(at)
    at = at.tz_localize("UTC") if at.tzinfo is None else at.tz_convert("UTC")
    starts = [pd.Timestamp(t) for t in anomaly_starts]
    starts = [(t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")) for t in starts]
    starts = [t for t in starts if at - lookback <= t <= at]
    incidents = incident_starts(starts, merge=merge)
    hours_lookback = lookback / pd.Timedelta(hours=1)
    hours_recent = recent / pd.Timedelta(hours=1)
    n_long = len(incidents)
    n_recent = sum(1 for t in incidents if t > at - recent)
    base_rate = n_long / hours_lookback
    # Gamma-Poisson update: the long-run rate is a prior worth ``prior_hours`` of observation.
    rate = (base_rate * prior_hours + n_recent) / (prior_hours + hours_recent)
    hours = horizon / pd.Timedelta(hours=1)
    p_rate = 1.0 - math.exp(-rate * hours)
    soon = [b for b in breaches if b.eta <= at + horizon]
    p_breach = 1.0 - float(np.prod([1.0 - min(max(b.probability, 0.0), 1.0) for b in soon])) if soon else 0.0
    p = 1.0 - (1.0 - p_rate) * (1.0 - p_breach)
    level = "low" if p < 0.10 else ("elevated" if p < 0.40 else "high")
    last_hour = sum(1 for t in starts if t > at - pd.Timedelta(hours=1))
    basis = [
        f"{n_long} incident(s) in the last {_fmt_td(lookback)} ({base_rate * 24:.2f} a day on average)",
        f"{n_recent} incident(s) in the last {_fmt_td(recent)}; rate now {rate:.3f} an hour"
        f" → {p_rate:.0%} chance from the rate alone",
        f"{last_hour} anomaly(ies) started in the last hour",
    ]
    if soon:
        basis += [b.describe() for b in soon]
        basis.append(f"→ {p_breach:.0%} chance that at least one predicted breach happens")
    else:
        basis.append("no metric of the group is forecast to cross a limit in the next hour")
    return IncidentOutlook(
        group=group,
        at=at,
        probability=p,
        level=level,
        rate_per_hour=rate,
        probability_from_rate=p_rate,
        probability_from_forecast=p_breach,
        incidents_lookback=n_long,
        incidents_recent=n_recent,
        anomalies_last_hour=last_hour,
        breaches=tuple(soon),
        basis=tuple(basis),
    )


def _fmt_td(td: pd.Timedelta) -> str:
    hours = td / pd.Timedelta(hours=1)
    if hours >= 48 and hours % 24 == 0:
        return f"{int(hours // 24)} days"
    return f"{hours:g} hours"
