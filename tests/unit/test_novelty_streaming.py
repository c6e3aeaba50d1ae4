"""Novelty's streaming path (``score_contexts`` with a carry) against ``score(new, context=past)``.

The monitors' tick hands novelty the day before the new points as context (a window that slides
with every tick, not the whole past), sometimes shorter than the tie-breaker's reach, with gaps,
novel values, values far outside the flag table, retrained models and restarts (nothing carried).
The carried path must give the per-series scores bit for bit.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from telewatch.detectors import create_detector
from telewatch.detectors.novelty import Novelty


def _series(seed: int, n: int) -> pd.Series:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    x = 100 + 20 * np.sin(2 * np.pi * t / 200 + seed) + rng.normal(0, 2, n)
    x[rng.random(n) < 0.05] = np.nan
    x[300 + seed * 7 : 306 + seed * 7] = np.nan  # a gap longer than a tick
    x[500 + seed] = 400.0  # new territory
    x[650 + seed] = -5e9  # far outside the flag table
    x[700:720] += 50 * (seed % 2)  # a level shift on some rows
    if seed % 3 == 0:
        x[::17] = np.round(x[::17])  # ties
    idx = pd.date_range("2024-01-01", periods=n, freq="1min", tz="UTC")
    return pd.Series(x, index=idx)


@pytest.mark.parametrize("mixed", [False, True])
@pytest.mark.parametrize("reach", [90, 150, 400, None])
def test_carried_ticks_equal_per_series_scores_with_a_sliding_context(reach: int | None, mixed: bool) -> None:
    """``reach``: the context is the last ``reach`` points before the new ones (a day of a
    monitor), shorter than the tie-breaker's 2 × 60 points for 90; ``None``: the whole past.
    ``mixed``: rows 1 and 3 have no tie-breaker (``tie_breaker=False``), the others do."""
    n_rows, n = 5, 1000
    rows = [_series(seed, n) for seed in range(n_rows)]
    tie = [not (mixed and i in (1, 3)) for i in range(n_rows)]
    models = [create_detector("novelty", tie_breaker=tie[i]).fit(s.iloc[:250]) for i, s in enumerate(rows)]
    carries: list[dict[str, np.ndarray]] = [{} for _ in rows]
    rng = np.random.default_rng(42)
    at, tick, carried = 120, 0, 0
    while at < n - 20:
        size = int(rng.choice([1, 2, 5, 5, 5, 7, 12]))
        if tick == 40:  # a restart: nothing carried
            carries = [{} for _ in rows]
        if tick == 60:  # retrained on later data: another low and width for two rows
            for i in (1, 3):
                models[i] = create_detector("novelty", tie_breaker=tie[i]).fit(rows[i].iloc[300:600])
        start = 0 if reach is None else max(0, at - reach)
        contexts = [s.iloc[start:at] for s in rows]
        new = np.stack([s.iloc[at : at + size].to_numpy() for s in rows])
        got = Novelty.score_contexts(models, [c.to_numpy() for c in contexts], new, carries)
        for i, s in enumerate(rows):
            expected = models[i].score(s.iloc[at : at + size], context=contexts[i]).to_numpy()
            np.testing.assert_array_equal(got[i], expected, err_msg=f"row {i}, tick {tick} at {at}")
        assert all("novelty" in c for c in carries)
        # a carry kept from earlier ticks has seen more points than this context and these new ones
        carried += sum(int(c["novelty"][0]) > at + size - start for c in carries)
        at += size
        tick += 1
    assert tick > 100
    if reach is not None and reach >= 120:  # many rows used their carry
        assert carried > 0.3 * tick * n_rows, (carried, tick)


def test_a_novel_point_in_a_tick_is_scored_as_without_a_carry() -> None:
    s = _series(1, 800)
    det = create_detector("novelty").fit(s.iloc[:300])
    carry: dict[str, np.ndarray] = {}
    Novelty.score_contexts([det], [s.iloc[200:495].to_numpy()], s.iloc[495:500].to_numpy()[None, :], [carry])
    got = Novelty.score_contexts(
        [det], [s.iloc[205:500].to_numpy()], s.iloc[500:505].to_numpy()[None, :], [carry]
    )
    expected = det.score(s.iloc[500:505], context=s.iloc[205:500]).to_numpy()
    np.testing.assert_array_equal(got[0], expected)
    assert got[0][0 if s.iloc[500] == 400.0 else 1] > 1.0  # the new territory scores


def test_bad_arguments_are_clear_errors() -> None:
    det = create_detector("novelty").fit(_series(0, 800))
    other = create_detector("novelty", local_window=30).fit(_series(0, 800))
    with pytest.raises(ValueError, match="one model"):
        Novelty.score_contexts([det], [np.ones(3)], np.ones((2, 3)))
    with pytest.raises(ValueError, match="share"):
        Novelty.score_contexts([det, other], [np.ones(3)] * 2, np.ones((2, 3)))


def test_without_the_tie_breaker_the_scores_are_the_novelty_alone() -> None:
    """``tie_breaker=False``: the same novelty where a value is novel, exactly 0 elsewhere (the
    tie-breaker is what ranks those), NaN where the value is; per series = matrix = streaming."""
    rows = [_series(seed, 900) for seed in range(3)]
    full = [create_detector("novelty").fit(s.iloc[:250]) for s in rows]
    bare = [create_detector("novelty", tie_breaker=False).fit(s.iloc[:250]) for s in rows]
    for seed, (s, f, b) in enumerate(zip(rows, full, bare, strict=True)):
        with_tie = f.score(s).to_numpy()
        alone = b.score(s).to_numpy()
        nan = np.isnan(s.to_numpy())
        assert np.array_equal(np.isnan(alone), nan)
        ok = ~nan
        assert (alone[ok] == 0).mean() > 0.8  # most points are not novel
        assert np.all(alone[ok] <= with_tie[ok])
        assert np.all(with_tie[ok] - alone[ok] < 0.01)  # the difference is the tie-breaker
        assert alone[500 + seed] > 1.0  # new territory still scores
        assert ((with_tie[ok] > 0) & (with_tie[ok] < 0.01)).mean() > 0.5
    matrix = np.stack([s.to_numpy() for s in rows])
    got = Novelty(tie_breaker=False).fit_score_rows(matrix)
    for i, s in enumerate(rows):
        np.testing.assert_array_equal(got[i], Novelty(tie_breaker=False).fit(s).score(s).to_numpy())
    new = np.stack([s.iloc[600:605].to_numpy() for s in rows])
    streamed = Novelty.score_contexts(bare, [s.iloc[300:600].to_numpy() for s in rows], new)
    for i, s in enumerate(rows):
        expected = bare[i].score(s.iloc[600:605], context=s.iloc[300:600]).to_numpy()
        np.testing.assert_array_equal(streamed[i], expected)


def test_a_model_stored_before_the_parameter_existed_keeps_its_tie_breaker() -> None:
    import pickle

    s = _series(2, 800)
    det = create_detector("novelty").fit(s.iloc[:300])
    del det.__dict__["tie_breaker"]  # as pickled by a version without the parameter
    old = Novelty.loads(pickle.dumps(det))
    assert old.get_params()["tie_breaker"] is True
    np.testing.assert_array_equal(
        old.score(s).to_numpy(), create_detector("novelty").fit(s.iloc[:300]).score(s).to_numpy()
    )
