"""The window scan's compact read (only the columns the scan uses, one query for all metrics) gives the
ranking of the full metrics × time grid: same order, reasons, directions and leads, same scores."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest

from telewatch.core.errors import NotFoundError, ValidationError
from telewatch.incidents.ranking import ScanConfig, rank_window
from telewatch.services.explain import explain_window, read_blocks, read_matrix
from telewatch.store import repo
from telewatch.store.db import Store

T0 = pd.Timestamp("2026-01-01", tz="UTC")
DAY = 1440
N_METRICS = 40
WINDOW = T0 + pd.Timedelta(minutes=3 * DAY + 600)


@pytest.fixture(scope="module")
def scan_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    """4 days of 1-minute points of 40 metrics with a daily cycle; 4 shift in the window, one leads
    the target ``m0`` by 5 minutes; gaps, a NULL stretch, and stored scores for a few metrics."""
    rng = np.random.default_rng(11)
    index = pd.date_range(T0, periods=4 * DAY, freq="1min")
    w0 = 3 * DAY + 600
    daily = 10 * np.sin(2 * np.pi * np.arange(index.size) / DAY)
    with Store(tmp_path_factory.mktemp("scan") / "scan.duckdb") as store:
        con = store.cursor()
        con.execute("INSERT INTO metrics (id, name, labels, grp) VALUES (9999, 'outsider', '{}', 'other')")
        repo.upsert_metric(con, name="m0", labels={"dc": "eu"}, group="other")  # m0 has two slices
        for i in range(N_METRICS):
            values = 100 + daily * (i % 3) + rng.normal(0, 2 + i % 5, index.size)
            values[::13] = np.round(values[::13])  # ties for the KS statistic
            if i < 4:
                values[w0 - (5 if i == 1 else 0) : w0 + 60] += 40 * (1 if i % 2 == 0 else -1)
            if i == 7:
                values[w0 - 300 : w0 - 200] = np.nan  # stored as NULL
            if i == 8:
                values[: 2 * DAY] = np.nan
            metric = repo.upsert_metric(con, name=f"m{i}", labels={"dc": "eu" if i % 2 else "us"}, group="g")
            keep = rng.random(index.size) > 0.02  # missing points
            repo.write_points(con, metric, pd.Series(values[keep], index=index[keep]))
            if i % 10 == 0:
                frame = pd.DataFrame(
                    {
                        "metric_id": metric,
                        "detector": "d",
                        "ts": index.tz_localize(None),
                        "score": rng.random(index.size),
                    }
                )
                frame.loc[w0 : w0 + 59, "score"] += 3.0 if i == 0 else 0.0
                con.register("_scores", frame)
                con.execute("INSERT INTO scores SELECT * FROM _scores")
                con.unregister("_scores")
        yield store


def _reference(store: Store, *, step: pd.Timedelta, target: str | None, use_scores: bool) -> list[tuple]:
    """The full-grid scan: every column from the start of the history to the window's end."""
    ids = [m.id for m in repo.list_metrics(store.cursor(), group="g")]
    ids.sort()
    names = []
    for mid in ids:
        info = repo.get_metric(store.cursor(), mid)
        names.append(info.display_name)
    period = DAY * pd.Timedelta("1min") // step
    w_len = int(pd.Timedelta("60min") / step)
    back = max(4 * w_len, 30, period * 3)
    t0 = WINDOW - back * step
    t1 = WINDOW + w_len * step
    values = read_matrix(store, ids, start=t0, end=t1, step=step)
    scores = read_matrix(store, ids, start=t0, end=t1, step=step, table="scores") if use_scores else None
    if scores is not None and np.isnan(scores).all():
        scores = None
    target_row = names.index(target) if target else None
    ranked = rank_window(
        values,
        back,
        back + w_len,
        names=names,
        step=step,
        config=ScanConfig(period=period),
        target=target_row,
        scores=scores,
    )
    return [(r.name, r.direction, r.lead_lag, r.reason, r.baseline, r.ks_d, r.score) for r in ranked]


@pytest.mark.parametrize(
    ("step", "target", "use_scores"),
    [("1min", "m0{dc=us}", True), ("1min", None, False), ("5min", "m1{dc=eu}", True)],
)
def test_compact_scan_ranks_as_the_full_grid(
    scan_store: Store, step: str, target: str | None, use_scores: bool
) -> None:
    step_td = pd.Timedelta(step)
    target_id = None
    if target is not None:
        target_id = next(
            m.id for m in repo.list_metrics(scan_store.cursor(), group="g") if m.display_name == target
        )
    result = explain_window(
        scan_store,
        start=WINDOW,
        end=WINDOW + pd.Timedelta("60min"),
        group="g",
        metric=target_id,
        step=step_td,
        use_scores=use_scores,
        limit=None,
    )
    got = [
        (
            r.metric,
            r.ranked.direction,
            r.ranked.lead_lag,
            r.ranked.reason,
            r.ranked.baseline,
            r.ranked.ks_d,
            r.ranked.score,
        )
        for r in result.ranked
    ]
    want = _reference(scan_store, step=step_td, target=target, use_scores=use_scores)
    assert [g[:6] for g in got] == [w[:6] for w in want]
    np.testing.assert_allclose([g[6] for g in got], [w[6] for w in want], rtol=1e-12)
    assert {r.metric for r in result.ranked[:4]} == {"m0{dc=us}", "m1{dc=eu}", "m2{dc=us}", "m3{dc=eu}"}
    assert result.read_seconds > 0
    if target == "m0{dc=us}":
        lead = {r.metric: r.ranked.lead_lag for r in result.ranked}
        assert lead["m1{dc=eu}"] == 5  # m1 moved 5 minutes before the target


def _pandas_grid(store: Store, ids: list[int], step: pd.Timedelta) -> np.ndarray:
    """The reference: every point read with repo.read_series, resampled by pandas (mean per bucket)."""
    grid = pd.date_range(T0, T0 + pd.Timedelta(days=4), freq=step, inclusive="left")
    rows = []
    for mid in ids:
        series = repo.read_series(store.cursor(), mid).dropna()
        rows.append(series.resample(step, origin="epoch").mean().reindex(grid).to_numpy())
    return np.array(rows)


@pytest.mark.parametrize("consecutive", [True, False])
def test_read_blocks_pivots_long_rows_side_by_side(scan_store: Store, consecutive: bool) -> None:
    ids = [m.id for m in repo.list_metrics(scan_store.cursor(), group="g")]
    ids = sorted(ids)[:5] if consecutive else [ids[7], ids[2], ids[30]]  # the join path
    step = pd.Timedelta("1min")
    full = _pandas_grid(scan_store, ids, step)
    blocks = [(100, 160), (3000, 3100), (3050, 3060), (4000, 4000), (4300, 4320)]  # overlaps, an empty one
    got = read_blocks(scan_store, ids, origin=T0, step=step, blocks=blocks)
    want = np.concatenate([full[:, a:b] for a, b in blocks], axis=1)
    np.testing.assert_array_equal(got, want)  # NULL stretch and missing points included
    assert np.isnan(got).any()
    # several points per bucket: their mean
    five = read_blocks(scan_store, ids, origin=T0, step=pd.Timedelta("5min"), blocks=[(10, 20), (800, 860)])
    want5 = _pandas_grid(scan_store, ids, pd.Timedelta("5min"))
    np.testing.assert_allclose(five, np.concatenate([want5[:, 10:20], want5[:, 800:860]], axis=1), rtol=1e-12)
    # the full-grid reader is the same data, laid out on the whole grid
    np.testing.assert_array_equal(
        read_matrix(scan_store, ids, start=T0, end=T0 + pd.Timedelta(days=4), step=step), full
    )
    with pytest.raises(ValidationError, match="unknown table"):
        read_blocks(scan_store, ids, origin=T0, step=step, blocks=blocks, table="metrics; --")


def test_target_lookup_keeps_its_errors(scan_store: Store) -> None:
    start, end = WINDOW, WINDOW + pd.Timedelta("60min")
    with pytest.raises(NotFoundError, match="no metric named 'nope'"):
        explain_window(scan_store, start=start, end=end, group="g", metric="nope")
    with pytest.raises(NotFoundError, match="no metric with id 123456"):
        explain_window(scan_store, start=start, end=end, group="g", metric=123456)
    with pytest.raises(ValidationError, match="metric name 'm0' has 2 slices"):
        explain_window(scan_store, start=start, end=end, group="g", metric="m0")
    # a target outside the chosen group is scanned too (found by id, without scanning the points)
    result = explain_window(scan_store, start=start, end=end, group="g", metric=9999)
    assert result.target == "outsider"
    assert result.metrics_scanned == N_METRICS + 1


def test_explicit_same_hours_blocks_must_match_the_window() -> None:
    x = np.random.default_rng(0).normal(size=(3, 400))
    with pytest.raises(ValidationError, match=r"same-hours block 0\.\.50 is not as long as the window"):
        rank_window(x, 340, 400, names=["a", "b", "c"], seasonal=[slice(0, 50)])
    # explicit blocks at the default positions rank as the default does
    cfg = ScanConfig(period=120, seasonal_days=2)
    default = rank_window(x, 340, 400, names=["a", "b", "c"], config=cfg)
    explicit = rank_window(
        x, 340, 400, names=["a", "b", "c"], config=cfg, seasonal=[slice(220, 280), slice(100, 160)]
    )
    assert repr(default) == repr(explicit)
