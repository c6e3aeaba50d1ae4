"""The C allocator's settings for a telewatch process: large arrays reused, not faulted in again.

Detection works on chunks of series at a time: each chunk allocates arrays of 10 MiB and more (32
metrics × 30 days of minutes is 11 MiB of float64) and frees them a few milliseconds later. With
glibc's defaults such a block is handed back to the kernel when it is freed (``mmap`` above the
dynamic threshold, or a trim of the heap's top) and the next one is faulted in again, a page at a
time: on 1,000 metrics × 30 days that was 10–15 % of the default detector's CPU
(``benchmarks/bench_scale.py``, ``docs/scale.md``). :func:`tune_allocator` keeps blocks up to
:data:`MMAP_THRESHOLD` on the heap and up to :data:`TRIM_THRESHOLD` of free memory at its top, so
the next chunk reuses them. The cost: a process keeps up to that much freed memory instead of
returning it at once.

It runs once per process, from the entry points that detect (the ``telewatch`` command — ``serve``,
``run``, ``detect``, ``replay`` and the rest — the Airflow task and the benchmarks), never at import.
``TELEWATCH_MALLOC=system`` leaves the allocator as it is, as does a ``MALLOC_*_`` setting of glibc
in the environment (the operator's own tuning wins) or a C library other than glibc.
"""

from __future__ import annotations

import ctypes
import os

from telewatch.core.errors import ConfigError

MIB = 1 << 20
#: glibc's ``mallopt`` parameters (``malloc.h``)
M_TRIM_THRESHOLD = -1
M_TOP_PAD = -2
M_MMAP_THRESHOLD = -3
#: blocks below this come from the heap (glibc's dynamic threshold stops at 32 MiB)
MMAP_THRESHOLD = 64 * MIB
#: free memory at the heap's top kept up to this much
TRIM_THRESHOLD = 256 * MIB
#: extra memory asked of the kernel each time the heap grows
TOP_PAD = 64 * MIB
#: glibc's own environment settings of the same parameters: an operator's tuning is left alone
GLIBC_ENV = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_")

_state: dict[str, str] = {}


def tune_allocator() -> str:
    """Apply the settings once per process; what was done: ``"tuned"``, or why not (``"system"``:
    ``TELEWATCH_MALLOC=system``; ``"environment"``: a ``MALLOC_*_`` variable is set; ``"not glibc"``;
    ``"refused"``: ``mallopt`` said no). Later calls return the first answer.

    >>> tune_allocator() in {"tuned", "system", "environment", "not glibc", "refused"}
    True
    """
    if "result" not in _state:
        _state["result"] = _apply()
    return _state["result"]


def _apply() -> str:
    choice = os.environ.get("TELEWATCH_MALLOC", "tuned").strip().lower() or "tuned"
    if choice not in {"tuned", "system"}:
        raise ConfigError(f"TELEWATCH_MALLOC must be 'tuned' or 'system', got {choice!r}")
    if choice == "system":
        return "system"
    if any(name in os.environ for name in GLIBC_ENV):
        return "environment"
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # noqa: B018 - only glibc has it (musl's mallopt does nothing)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return "not glibc"
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    done = [
        mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD),
        mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD),
        mallopt(M_TOP_PAD, TOP_PAD),
    ]
    return "tuned" if all(r == 1 for r in done) else "refused"
