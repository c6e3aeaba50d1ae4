"""``telewatch bench nab-pages``: NAB files replayed through the default monitor, pages counted
(../shared/datasets/nab)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from telewatch.bench.nab_pages import run_nab_pages
from telewatch.cli.app import app

NAB_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "datasets" / "nab"
pytestmark = [
    pytest.mark.shared,
    pytest.mark.skipif(not (NAB_DIR / "labels" / "combined_windows.json").is_file(), reason="no NAB corpus"),
]
JUMPS_DOWN = "artificialWithAnomaly/art_daily_jumpsdown.csv"
NO_NOISE = "artificialNoAnomaly/art_daily_no_noise.csv"


@pytest.mark.slow
def test_a_day_whose_peak_stays_low_is_one_critical_page_and_a_clean_series_none(tmp_path: Path) -> None:
    """art_daily_jumpsdown, read every 5 minutes: on its labelled day the daily high comes in at half
    its usual height for hours. One page tells it — critical, not "back to normal" (before the
    monitor judged "over" by readings within 2 minutes of its tick, which a 5-minute series never
    has, that day sent six "firing … (back to normal)" warnings). A square wave with no anomaly
    pages nothing."""
    result = run_nab_pages(
        data_dir=NAB_DIR,
        names=[JUMPS_DOWN, NO_NOISE],
        workers=2,
        json_path=tmp_path / "pages.json",
        messages_dir=tmp_path / "msgs",
    )
    jumps, clean = result.files
    assert (jumps.name, clean.name) == (JUMPS_DOWN, NO_NOISE)
    assert jumps.scorable == [True]
    assert jumps.told == [True]
    assert [(p.severity, p.window) for p in jumps.pages] == [("critical", 0)], jumps.pages
    assert "back to normal" not in jumps.pages[0].subject
    assert jumps.pages[0].at.day_name() == "Friday"  # the shift keeps weekdays: 2014-04-11 was a Friday
    assert clean.pages == []
    assert clean.windows == []
    (line,) = result.lines()
    assert line.startswith(
        "NAB pages tuning half (2 files): told 1/1 windows, 1 pages (1 critical), 0 outside"
    )
    saved = json.loads((tmp_path / "pages.json").read_text())
    assert saved["halves"][0]["told"] == 1
    assert saved["files"][0]["pages"][0]["severity"] == "critical"
    written = sorted(p.name.split("-", 3)[-1] for p in (tmp_path / "msgs" / "art_daily_jumpsdown").iterdir())
    # the page (text and chart), its repeat four hours on, and "resolved" once the next day is normal
    assert written == ["firing.png", "firing.txt", "repeat.png", "repeat.txt", "resolved.txt"]


def test_the_command_refuses_an_unknown_half() -> None:
    out = CliRunner().invoke(app, ["bench", "nab-pages", "--data", str(NAB_DIR), "--half", "middle"])
    assert out.exit_code == 2
    assert "half must be one of" in out.output
