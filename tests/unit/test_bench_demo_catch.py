"""``telewatch bench demo``: planted incidents caught and incidents outside them, on a real run."""

from __future__ import annotations

import pandas as pd

from telewatch.bench.demo_catch import SLACK, evaluate_demo_catch
from telewatch.core.defaults import default_detector


def test_demo_catch_counts_planted_and_outside_incidents() -> None:
    result = evaluate_demo_catch(days=14)
    assert result.detector == default_detector()
    assert len(result.planted) >= 3
    assert 0 <= result.caught <= len(result.planted)
    assert len(result.missed) == len(result.planted) - result.caught
    # an outside incident overlaps no planted window (± the slack)
    for inc in result.outside:
        for planted in result.planted:
            assert inc.end < planted.start - SLACK or inc.start > planted.end + SLACK
    assert len(result.outside) <= result.incidents
    line = result.summary_line()
    assert line.startswith(f"DEMO planted={len(result.planted)} caught={result.caught} ")
    assert f"outside_incidents={len(result.outside)} weeks=2.0" in line
    assert all(d.startswith(("missed ", "outside ")) for d in result.detail_lines())


def test_a_detector_that_flags_nothing_catches_nothing() -> None:
    """A threshold no calibrated z reaches: every planted incident is missed, nothing is outside."""
    result = evaluate_demo_catch(days=14, threshold=1e9)
    assert result.caught == 0
    assert result.outside == []
    assert result.anomalies == 0
    assert result.missed == result.planted
    assert isinstance(result.planted[0].start, pd.Timestamp)


def test_novelty_seasonal_catches_every_planted_incident_of_the_demo_month() -> None:
    """Issue 19's target on the demo month: all 11 planted incidents, at most one incident a week
    outside them. ``novelty`` alone misses the ones inside the range it has seen (error bursts
    after the month's outages, a users drop and a sessions drop at their usual hour)."""
    result = evaluate_demo_catch(detector="novelty_seasonal")
    assert len(result.planted) == 11
    assert result.missed == [], result.detail_lines()
    assert len(result.outside) <= result.weeks, result.detail_lines()
    novelty = evaluate_demo_catch(detector="novelty")
    assert novelty.caught < result.caught


def test_the_profile_channel_catches_every_planted_incident_with_one_outside() -> None:
    """The profile channel with its defaults (no novelty tie-breaker where it ranks, far
    excursions left out of its calibration only when rare): all 11, at most one incident outside
    them in the 4.3 weeks; with the recurring excursions never left out it misses some (the rule
    keeps the month's outages from calibrating the later error bursts away)."""
    result = evaluate_demo_catch(detector="novelty_seasonal", params={"channel": "profile"})
    assert result.missed == [], result.detail_lines()
    assert len(result.outside) <= 1, result.detail_lines()
    never = evaluate_demo_catch(
        detector="novelty_seasonal", params={"channel": "profile", "screen_sigma": 1e9}
    )
    assert never.caught < len(never.planted)
