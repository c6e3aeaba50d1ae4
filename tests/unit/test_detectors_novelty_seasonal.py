"""novelty_seasonal: novelty alone on a short history, novelty plus a seasonal channel after it, and
the z the detection paths give it (``services.detection.calibrated_scores``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.special import ndtri_exp

from telewatch.detectors import create_detector
from telewatch.detectors.novelty import Novelty
from telewatch.detectors.novelty_seasonal import NoveltySeasonal, repeat_weights
from telewatch.postrules.calibrate import Calibrator
from telewatch.services.detection import calibrated_scores

STEP = pd.Timedelta(minutes=5)
PER_DAY = 288


def daily(days: int, seed: int = 0) -> pd.Series:
    """A metric with a daily cycle (users: 1,000 at night, 3,000 at the afternoon peak) and noise."""
    idx = pd.date_range("2024-03-04", periods=days * PER_DAY, freq=STEP, tz="UTC")
    t = np.arange(idx.size)
    rng = np.random.default_rng(seed)
    x = 2000 - 1000 * np.cos(2 * np.pi * t / PER_DAY) + rng.normal(0, 40, idx.size)
    return pd.Series(x, index=idx, name="users")


def _tick_scores(det: NoveltySeasonal, context: pd.Series, new: pd.Series) -> np.ndarray | None:
    """What a tick scores ``new`` at, after ``context`` (one series: the streaming path)."""
    return NoveltySeasonal.score_contexts_at(
        [det],
        [context.to_numpy()],
        new.to_numpy()[None, :],
        [{}],
        context_times=[pd.DatetimeIndex(context.index).as_unit("ns").asi8],
        new_times=pd.DatetimeIndex(new.index).as_unit("ns").asi8[None, :],
    )


def test_short_history_is_novelty_exactly() -> None:
    s = daily(6)
    det = NoveltySeasonal().fit(s.iloc[: 2 * PER_DAY])  # two days < min_days
    assert det.seasonal_ is None
    want = Novelty().fit(s.iloc[: 2 * PER_DAY]).score(s).to_numpy()
    np.testing.assert_array_equal(det.score(s).to_numpy(), want)
    # and its streaming path is novelty's, carry included
    past, new = s.iloc[1000:1500].to_numpy(), s.iloc[1500:1505].to_numpy()[None, :]
    carry: dict[str, np.ndarray] = {}
    got = NoveltySeasonal.score_contexts([det], [past], new, [carry])
    assert got is not None
    assert "novelty" in carry
    np.testing.assert_allclose(got[0], det.score(s.iloc[1500:1505], context=s.iloc[1000:1500]).to_numpy())


@pytest.mark.parametrize("channel", ["baseline", "profile"])
def test_a_drop_inside_the_range_is_caught_at_the_peak_and_novelty_misses_it(channel: str) -> None:
    """Users halve for 40 minutes at the afternoon peak, to a value seen every night: novelty's
    z stays low; the combined z passes 5 (the detection paths' threshold)."""
    s = daily(10)
    peak = 8 * PER_DAY + PER_DAY // 2  # day 9, 12:00
    s.iloc[peak : peak + 8] *= 0.5
    train = np.ones(len(s), dtype=bool)
    _, z_novelty, _ = calibrated_scores("novelty", {}, s, train)
    det, z, _ = calibrated_scores("novelty_seasonal", {"channel": channel}, s, train)
    assert isinstance(det, NoveltySeasonal)
    assert det.seasonal_ is not None
    window = slice(peak, peak + 8)
    assert np.nanmax(z_novelty.to_numpy()[window]) < 5.0
    assert np.nanmax(z.to_numpy()[window]) >= 5.0
    # quiet elsewhere after the warm-up: no point of an ordinary day reaches 5
    quiet = z.to_numpy().copy()
    quiet[peak - 12 : peak + 24] = np.nan
    assert np.nanmax(quiet) < 5.0


@pytest.mark.parametrize("channel", ["baseline", "profile"])
def test_a_new_maximum_still_scores_as_novelty_does(channel: str) -> None:
    s = daily(10)
    s.iloc[9 * PER_DAY + 100] = 6000.0  # twice the daily peak
    train = np.ones(len(s), dtype=bool)
    _, z_novelty, _ = calibrated_scores("novelty", {}, s, train)
    _, z, _ = calibrated_scores("novelty_seasonal", {"channel": channel}, s, train)
    at = 9 * PER_DAY + 100
    assert z_novelty.iloc[at] >= 5.0
    assert z.iloc[at] >= 5.0, z.iloc[at]


def test_the_calibrated_score_is_the_larger_channel_z() -> None:
    """train_calibrator (novelty's calibrator) turns the score into max(z_novelty, z_seasonal),
    z_seasonal being the seasonal channel's surprisal (after the repeat weights) as a z."""
    s = daily(8, seed=3)
    s.iloc[7 * PER_DAY + 150 : 7 * PER_DAY + 160] += 800.0
    det = create_detector("novelty_seasonal").fit(s)
    assert isinstance(det, NoveltySeasonal)
    assert det.calibrators_ is not None
    cal_n, cal_s = det.calibrators_
    raw = det.score(s).to_numpy()
    z = det.train_calibrator(raw)(raw)
    z_n = cal_n(det.novelty_.score(s).to_numpy())
    surprisal = -cal_s.log_tail_probability(det.seasonal_.score(s).to_numpy())  # type: ignore[union-attr]
    surprisal = surprisal * repeat_weights(surprisal, det.seasonal_cooldown)
    z_s = np.maximum(-ndtri_exp(-surprisal), 0.0)
    beyond = surprisal > -np.log(cal_n.p_u_)  # where the seasonal channel can count
    np.testing.assert_allclose(z[beyond], np.maximum(z_n, z_s)[beyond], rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(z[~beyond], z_n[~beyond], rtol=1e-12, atol=1e-12)
    assert np.nanmax(z_s) >= 5.0  # the shifted stretch


def test_without_the_seasonal_channel_the_calibrator_is_trained_on_the_scores() -> None:
    s = daily(2)
    det = NoveltySeasonal().fit(s)
    raw = det.score(s).to_numpy()
    want = Calibrator().train(raw)
    got = det.train_calibrator(raw)
    np.testing.assert_array_equal(got(raw), want(raw))


def test_the_seasonal_channel_needs_a_daily_cycle_when_asked() -> None:
    idx = pd.date_range("2024-03-04", periods=6 * PER_DAY, freq=STEP, tz="UTC")
    flat = pd.Series(np.random.default_rng(1).normal(50, 2, idx.size), index=idx)
    assert NoveltySeasonal().fit(flat).seasonal_ is not None  # history alone decides by default
    assert NoveltySeasonal(require_cycle=True).fit(flat).seasonal_ is None
    assert NoveltySeasonal(require_cycle=True).fit(daily(6)).seasonal_ is not None


def test_streaming_leaves_series_with_the_seasonal_channel_to_be_scored_one_by_one() -> None:
    s = daily(6)
    det = NoveltySeasonal().fit(s.iloc[: 4 * PER_DAY])
    assert det.seasonal_ is not None
    got = NoveltySeasonal.score_contexts(
        [det], [s.iloc[:1000].to_numpy()], s.iloc[1000:1005].to_numpy()[None, :]
    )
    assert got is None


@pytest.mark.parametrize("cooldown", [1, 3, 10])
def test_repeat_weights_against_a_plain_loop(cooldown: int) -> None:
    x = np.random.default_rng(cooldown).exponential(1.0, 400)
    x[::37] = np.nan
    want = np.ones(x.size)
    for t in range(x.size):
        if np.isnan(x[t]):
            continue
        earlier = [k for k in range(t) if not np.isnan(x[k]) and x[k] >= x[t]]
        if earlier:
            want[t] = min(1.0, (t - earlier[-1]) / cooldown)
    np.testing.assert_array_equal(repeat_weights(x, cooldown), want)


@pytest.mark.parametrize("seed", range(6))
def test_screen_tail_is_screen_anomalies(seed: int) -> None:
    """The screen novelty_seasonal runs gives screen_anomalies' masks: clean, contaminated, tied
    (novelty-like: tie-breakers below 0.01, novel values above 1), constant, short, with NaNs."""
    from telewatch.detectors.novelty_seasonal import screen_tail
    from telewatch.postrules.calibrate import screen_anomalies

    rng = np.random.default_rng(seed)
    clean = np.abs(rng.normal(0, 1, 5_000))
    dirty = clean.copy()
    dirty[2_000 : 2_000 + 40 * (seed + 1)] = 20.0 + seed
    tied = np.where(rng.random(5_000) < 0.97, rng.random(5_000) * 0.01, 1.0 + rng.exponential(1.0, 5_000))
    holes = dirty.copy()
    holes[::17] = np.nan
    for x in (clean, dirty, tied, holes, np.full(300, 2.0), clean[:19], np.round(dirty, 1)):
        np.testing.assert_array_equal(screen_tail(x), screen_anomalies(x))


def test_the_profile_channel_has_both_fast_paths_and_baseline_neither() -> None:
    """The profile channel scores a matrix and a tick's new points itself (the conformance suite
    checks their numbers); the baseline channel leaves both to the per-series path."""
    s = daily(6)
    idx = pd.DatetimeIndex(s.index)
    profile = NoveltySeasonal(channel="profile")
    assert profile.fit_score_matrix(s.to_numpy()[None, :], idx) is not None
    assert NoveltySeasonal(channel="baseline").fit_score_matrix(s.to_numpy()[None, :], idx) is None
    past, new = s.iloc[: 5 * PER_DAY], s.iloc[5 * PER_DAY : 5 * PER_DAY + 5]
    for channel, fast in (("profile", True), ("baseline", False)):
        det = NoveltySeasonal(channel=channel).fit(past)
        assert det.seasonal_ is not None
        got = _tick_scores(det, past, new)
        assert (got is not None) is fast
        if got is not None:
            np.testing.assert_allclose(got[0], det.score(new, context=past).to_numpy(), rtol=1e-9, atol=1e-9)


def test_warm_up_builds_the_profile_channels_kernels_once() -> None:
    """``_kernels.warm_up`` compiles (or loads) the profile channel's passes too, and the
    per-series path (a pandas series: read-only values) runs those same builds, not a second
    read-only version of each."""
    from telewatch.detectors import _daily_profile as dp
    from telewatch.detectors import _kernels
    from telewatch.detectors import novelty_seasonal as ns

    _kernels.warm_up()
    assert {"median", "gather", "grid", "levels"} <= set(dp._KERNELS)
    assert ns._ADVANCE
    s = daily(6)
    det = NoveltySeasonal(channel="profile").fit(s)
    assert det.seasonal_ is not None
    det.score(s)
    built = [str(arg) for kernel in dp._KERNELS.values() for sig in kernel.signatures for arg in sig]
    assert "array(float64, 2d, C)" in built
    assert not any("readonly" in arg for arg in built)


def test_an_unknown_channel_is_a_config_error() -> None:
    from telewatch.core.errors import ConfigError

    with pytest.raises(ConfigError, match="channel"):
        NoveltySeasonal(channel="weekly").fit(daily(1))


def test_a_model_stored_before_the_new_parameters_still_loads_and_names_its_parameters() -> None:
    """A model pickled by a version without ``screen_max_per_day`` and ``novelty_tie`` (the tick
    groups models by ``get_params``) reads as what it was fitted with: every far excursion left
    out, the tie-breaker kept; it scores as it did."""
    import pickle

    idx = pd.date_range("2024-01-01", periods=5 * 288, freq="5min", tz="UTC")
    s = pd.Series(10 + np.sin(np.arange(idx.size) * 2 * np.pi / 288), index=idx)
    det = NoveltySeasonal(channel="profile").fit(s)
    before = det.score(s).to_numpy()
    del det.__dict__["screen_max_per_day"], det.__dict__["novelty_tie"]
    old = NoveltySeasonal.loads(pickle.dumps(det))
    params = old.get_params()
    assert params["screen_max_per_day"] == np.inf
    assert params["novelty_tie"] is True
    np.testing.assert_array_equal(old.score(s).to_numpy(), before)


def _nightly_dip(days: int = 9) -> tuple[pd.Series, int, pd.Timestamp]:
    """Minute data with a daily cycle, a nightly job's one-minute dip at 23:59 every night, and on
    the last day a one-off dip as deep at 14:00 (its position is returned)."""
    idx = pd.date_range("2024-03-01", periods=days * 1440, freq="1min", tz="UTC")
    minute = np.asarray(idx.hour * 60 + idx.minute)
    x = 100 + 10 * np.sin(2 * np.pi * minute / 1440) + np.random.default_rng(2).normal(0, 1, idx.size)
    x[minute == 23 * 60 + 59] -= 30
    last = idx[-1440]
    one_off = int(idx.get_loc(last + pd.Timedelta("14:00:00")))
    x[one_off] -= 30
    return pd.Series(x, index=idx), one_off, last


def test_a_nightly_dip_is_a_habit_the_same_dip_at_another_hour_is_not() -> None:
    """A one-minute dip a slot's median cannot learn (one point of five) is learned as a habit of
    that time of day from the training nights: the ninth night's dip scores under the threshold,
    the same dip at 14:00 of that day far over it. (Without the habits, the nightly dip scored 9.2.)"""
    s, one_off, last = _nightly_dip()
    _, z, _ = calibrated_scores("novelty_seasonal", {}, s, np.asarray(s.index < last))
    assert z.iloc[-1] < 2.0
    assert z.iloc[one_off] > 8.0


def test_habits_are_capped_alike_on_the_matrix_per_series_and_streaming_paths() -> None:
    s, _, last = _nightly_dip(days=8)
    train = s[s.index < last]
    det = NoveltySeasonal().fit(train)
    fit = det.seasonal_.fit_  # type: ignore[union-attr]
    assert fit.habit is not None
    rows = np.stack([train.to_numpy(), train.to_numpy()[::-1].copy()])
    matrix = NoveltySeasonal().fit_score_matrix(rows, pd.DatetimeIndex(train.index))
    assert matrix is not None
    np.testing.assert_allclose(matrix[0], det.score(train).to_numpy(), rtol=1e-9, atol=1e-9)
    new = s[s.index >= last]
    got = _tick_scores(det, train, new)
    assert got is not None
    np.testing.assert_allclose(got[0], det.score(new, context=train).to_numpy(), rtol=1e-9, atol=1e-9)


def _bursty(days: int, bursts_per_day: int, seed: int = 0) -> pd.Series:
    """A quiet metric with no daily cycle (10 ± 0.5) that bursts to about 60 for 2 points at
    random times, ``bursts_per_day`` times a day (network bytes of a batch job, say)."""
    idx = pd.date_range("2024-03-04", periods=days * PER_DAY, freq=STEP, tz="UTC")
    rng = np.random.default_rng(seed)
    x = rng.normal(10.0, 0.5, idx.size)
    for d in range(days):
        for at in rng.choice(PER_DAY - 2, size=bursts_per_day, replace=False):
            x[d * PER_DAY + at : d * PER_DAY + at + 2] = rng.normal(60.0, 2.0, 2)
    return pd.Series(x, index=idx, name="network_in")


def _next_day_z(s: pd.Series, days: int) -> np.ndarray:
    """The next day's z's after a model fitted on the first ``days`` (as a monitor's daily refit)."""
    from telewatch.services.detection import calibrate

    train, new = s.iloc[: days * PER_DAY], s.iloc[days * PER_DAY : (days + 1) * PER_DAY]
    model, _, _ = calibrated_scores("novelty_seasonal", {}, train, np.ones(len(train), dtype=bool))
    return calibrate(model, model.score(new, context=train).to_numpy(dtype="float64"))


def test_bursts_that_recur_many_times_a_day_are_calibrated_on_not_screened_out() -> None:
    """Excursions in many separate runs (here 8 a day, more than ``screen_max_per_day``'s 2) are
    the metric's heavy tail: the seasonal channel's calibrator keeps them, whichever screen found
    them (the robust tail screen as well as the far-excursion rule), so the next day's bursts are
    not anomalies. (The tail screen used to leave them out whatever their count: z 7.2.) A burst
    three times as high still is one; so is a burst of a metric where they are rare (a few runs:
    an incident, screened)."""
    frequent = _bursty(5, 8)
    z = _next_day_z(frequent, 4)
    burst = frequent.iloc[4 * PER_DAY :].to_numpy() > 30
    assert z[burst].max() < 5.0, z[burst].max()
    higher = frequent.copy()
    at = 4 * PER_DAY + int(np.flatnonzero(burst)[0])
    higher.iloc[at] = 180.0
    assert _next_day_z(higher, 4)[at - 4 * PER_DAY] >= 5.0
    rare = _bursty(5, 0)
    rare.iloc[2 * PER_DAY + 100 : 2 * PER_DAY + 102] = 60.0  # one burst in the training days
    rare.iloc[4 * PER_DAY + 150 : 4 * PER_DAY + 152] = 60.0  # and one the next day
    assert _next_day_z(rare, 4)[150] >= 5.0


def _cron_spikes(days: int, last_height: float, seed: int = 3) -> pd.Series:
    """An idle VM's CPU at 5-minute steps (0.10 or 0.13 %, quantised as cloud metrics are) with
    a backup job's one-point spike at about 03:05-03:30, a little higher each night (1.40, 1.43,
    ...), as ``ec2_cpu_utilization_24ae8d`` of NAB; the last night's spike is ``last_height``."""
    idx = pd.date_range("2024-03-04", periods=days * PER_DAY, freq=STEP, tz="UTC")
    rng = np.random.default_rng(seed)
    x = rng.choice([0.10, 0.13], idx.size, p=[0.8, 0.2])
    for d in range(days):
        at = d * PER_DAY + 37 + int(rng.integers(0, 6))  # 03:05 + 0-25 minutes
        x[at] = last_height if d == days - 1 else 1.40 + 0.03 * d
    return pd.Series(x, index=idx, name="cpu_utilization")


def test_a_cron_spike_a_little_higher_than_on_the_nights_before_is_still_the_habit() -> None:
    """A nightly job's spike that tops out a few per cent above every night before it lies within
    its habit (``HABIT_MARGIN``): not an anomaly on the night after six training nights (it scored
    z 39.8 when the habit reached only as far as its second-highest night). A spike twice as high
    at that hour is one, and so is the usual spike at 14:00."""
    from telewatch.services.detection import calibrate

    def last_night_z(s: pd.Series) -> float:
        train, new = s.iloc[: 6 * PER_DAY], s.iloc[6 * PER_DAY :]
        model, _, _ = calibrated_scores("novelty_seasonal", {}, train, np.ones(len(train), dtype=bool))
        z = calibrate(model, model.score(new, context=train).to_numpy(dtype="float64"))
        return float(np.nanmax(z))

    assert last_night_z(_cron_spikes(7, 1.40 + 0.03 * 6)) < 5.0
    assert last_night_z(_cron_spikes(7, 3.2)) >= 5.0
    at_two = _cron_spikes(7, 0.10)
    at_two.iloc[6 * PER_DAY + 168] = 1.55  # 14:00
    assert last_night_z(at_two) >= 5.0


def test_a_one_off_burst_across_midnight_is_one_night_not_a_habit_of_two_days() -> None:
    """A burst at 23:59-00:00 falls on two calendar days but is one night's: it is not learned as
    a habit of that time of day (the habit needs ``HABIT_DAYS`` nights), so the same burst two
    nights later is an anomaly. (Counting it once per calendar day made it a habit: z 3.6.)"""
    s, _, last = _nightly_dip(days=9)
    x = s.to_numpy().copy()
    x[(s.index.hour == 23) & (s.index.minute == 59)] += 30  # the nightly dip's minute: undo it
    night = int(s.index.get_loc(last - pd.Timedelta(days=2, minutes=1)))  # 23:59, two nights before
    x[night : night + 2] += 40
    at = int(s.index.get_loc(last + pd.Timedelta(minutes=10)))  # 00:10 of the new day
    x[at : at + 2] += 40
    s = pd.Series(x, index=s.index)
    _, z, _ = calibrated_scores("novelty_seasonal", {}, s, np.asarray(s.index < last))
    assert z.iloc[at] >= 5.0, z.iloc[at]
