"""The defaults every detection path shares: one detector, one calibrated threshold.

``telewatch detect``, uploads, the explorer's "store", the demo, ``bench labels`` and a monitor
without a ``detector:`` all use :func:`default_detector` (``TELEWATCH_DEFAULT_DETECTOR``, which
``Settings.default_detector`` reads too) and :data:`DEFAULT_THRESHOLD`, a calibrated z: the same
threshold means the same tail probability on every path. Importing this module costs nothing (an
Airflow environment reads monitors files with it).
"""

from __future__ import annotations

import os

#: The detector used when none is named.
DEFAULT_DETECTOR = "novelty_seasonal"
#: Calibrated z at or above which a point is anomalous (a tail probability of about 3e-7).
DEFAULT_THRESHOLD = 5.0


def default_detector() -> str:
    """``TELEWATCH_DEFAULT_DETECTOR`` if set, else :data:`DEFAULT_DETECTOR`.

    >>> isinstance(default_detector(), str)
    True
    """
    return os.environ.get("TELEWATCH_DEFAULT_DETECTOR") or DEFAULT_DETECTOR
