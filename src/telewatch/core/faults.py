"""Crash points for the kill-loop tests: a process kills itself at a named point when told to.

Production code calls :func:`crash_point` at the few places where dying matters (inside an ingest
transaction, between a webhook send and its mark-sent, ...). It does nothing unless the environment
variable ``TELEWATCH_CRASH_AT`` names that point:

* ``ingest.after_points`` — SIGKILL the first time the point is reached;
* ``deliver.after_send#3`` — SIGKILL the third time it is reached;
* ``detect.begin+0.25`` — once the point is reached, SIGKILL 0.25 s later, wherever the process is then
  (inside DuckDB, mid-commit, ...): a random point of the work that follows.

Only the test suite sets the variable; ``telewatch`` never does.

>>> crash_point("ingest.after_points")  # TELEWATCH_CRASH_AT is not set: nothing happens
>>> parse_target("deliver.after_send#3")
('deliver.after_send', 3, None)
>>> parse_target("detect.begin+0.25")
('detect.begin', 1, 0.25)
"""

from __future__ import annotations

import os
import signal
import threading

ENV = "TELEWATCH_CRASH_AT"

_hits: dict[str, int] = {}


def parse_target(text: str) -> tuple[str, int, float | None]:
    """``name[#nth][+delay_seconds]`` as (name, nth hit, delay or None); malformed parts raise ValueError."""
    name, _, delay = text.strip().partition("+")
    name, _, nth = name.partition("#")
    return name, int(nth) if nth else 1, float(delay) if delay else None


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def crash_point(name: str) -> None:
    """Kill this process (SIGKILL, no cleanup) if ``TELEWATCH_CRASH_AT`` names this point."""
    target = os.environ.get(ENV)
    if not target:
        return
    wanted, nth, delay = parse_target(target)
    if wanted != name:
        return
    _hits[name] = _hits.get(name, 0) + 1
    if _hits[name] != nth:
        return
    if delay is None:
        _die()
        return
    timer = threading.Timer(delay, _die)
    timer.daemon = True
    timer.start()
