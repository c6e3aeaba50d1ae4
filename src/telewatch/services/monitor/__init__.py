"""A monitor's tick, one idea a module:

- :mod:`.run` — :func:`run_monitor`, the job every scheduler calls (fetch, store, score, anomalies,
  incidents, alerts), crash-safe and idempotent for a given ``now``;
- :mod:`.state` — the lease and the monitor's stored state (last run, failures, cursor, backoff);
- :mod:`.points` — storing the fetched points;
- :mod:`.training` — the calibrated models (the pipeline of ``telewatch detect``), the warm-up;
- :mod:`.scoring` — the streaming tick (state kept between ticks: ``services.tick_state``);
- :mod:`.anomalies` — anomaly windows from the calibrated scores, held while the metric stays out;
- :mod:`.alerts` — what pages and how: candidates, incidents, severity, the monitor's rule;
- :mod:`.reference` — the per-metric tick the streaming one is checked against;
- :mod:`.model` — the values they pass around.
"""

from telewatch.services.monitor.alerts import build_candidates, monitor_rules, submit_and_deliver
from telewatch.services.monitor.model import AlertingSetup, FoundAnomaly, MonitorRunReport
from telewatch.services.monitor.run import run_monitor
from telewatch.services.monitor.state import (
    MonitorState,
    acquire_lease,
    backoff,
    default_holder,
    list_states,
    read_state,
    release_lease,
)

__all__ = [
    "AlertingSetup",
    "FoundAnomaly",
    "MonitorRunReport",
    "MonitorState",
    "acquire_lease",
    "backoff",
    "build_candidates",
    "default_holder",
    "list_states",
    "monitor_rules",
    "read_state",
    "release_lease",
    "run_monitor",
    "submit_and_deliver",
]
