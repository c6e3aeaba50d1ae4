"""The allocator's settings (``telewatch.core.allocator``): a detection chunk's arrays come from the
heap and are reused, set once per process by the ``telewatch`` command, and left alone when asked.

Each case runs in a fresh interpreter: the settings are the process's, and glibc's ``mallinfo2``
tells where a block came from (``hblks``: the blocks mapped on their own)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from telewatch.core.errors import ConfigError

PROBE = textwrap.dedent(
    """
    import ctypes, json, sys
    import numpy as np

    class Info(ctypes.Structure):
        _fields_ = [(n, ctypes.c_size_t) for n in
                    "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()]

    libc = ctypes.CDLL(None)
    libc.mallinfo2.restype = Info
    result = None
    if sys.argv[1] == "tune":
        from telewatch.core.allocator import tune_allocator
        result = tune_allocator()
    elif sys.argv[1] == "cli":  # the telewatch command's entry point, on a command that does nothing
        sys.argv = ["telewatch", "--help"]
        from telewatch.cli import main
        try:
            main()
        except SystemExit:
            pass
        from telewatch.core import allocator
        result = allocator._state.get("result")
    before = libc.mallinfo2().hblks
    chunk = np.ones((32, 43_200))  # one chunk of 32 metrics x 30 days of minutes: 11 MiB
    mapped = libc.mallinfo2().hblks - before
    print(json.dumps({"result": result, "mapped": mapped}))
    """
)


def _probe(mode: str, **env: str) -> dict[str, object]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "TELEWATCH_MALLOC"}
    out = subprocess.run(
        [sys.executable, "-c", PROBE, mode],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_a_chunk_of_arrays_comes_from_the_heap_once_tuned() -> None:
    assert _probe("none") == {"result": None, "mapped": 1}  # glibc's default: mapped on its own
    assert _probe("tune") == {"result": "tuned", "mapped": 0}


def test_the_telewatch_command_tunes_its_process() -> None:
    assert _probe("cli") == {"result": "tuned", "mapped": 0}


def test_it_is_left_alone_when_asked_or_already_tuned_by_the_operator() -> None:
    assert _probe("tune", TELEWATCH_MALLOC="system") == {"result": "system", "mapped": 1}
    # glibc reads its own variables at start: an operator's tuning is not overridden
    assert _probe("tune", MALLOC_TRIM_THRESHOLD_="1048576")["result"] == "environment"


def test_a_wrong_setting_says_what_is_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    from telewatch.core import allocator

    monkeypatch.setenv("TELEWATCH_MALLOC", "jemalloc")
    monkeypatch.setattr(allocator, "_state", {})
    with pytest.raises(ConfigError, match=r"TELEWATCH_MALLOC must be 'tuned' or 'system', got 'jemalloc'"):
        allocator.tune_allocator()
