"""An admin deletes a metric from the explorer (issue 20/21): a confirmation that names the metric and what
goes with it (points, scores, stored anomalies, labelled windows), ``DELETE /api/metrics/{id}``, then the
overview, where the metric is gone and a notice says what was deleted — in Russian here (ru-RU browser). A
read sign-in sees the button disabled. An unknown metric in the explorer's URL is the UI's translated
not-found page (HTML, 404) with a link back to the overview."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd
import pytest

from support.auth import READ_TOKEN
from telewatch.api.auth import SESSION_COOKIE
from telewatch.store import repo

from .conftest import E2E_SESSION, Served

pytestmark = pytest.mark.timeout(300)
START = pd.Timestamp("2026-11-01", tz="UTC")


def _plant(served: Served) -> dict[str, int]:
    idx = pd.date_range(START, periods=1440, freq="1min")
    rng = np.random.default_rng(3)
    ids: dict[str, int] = {}
    with served.store.transaction(series=True) as tx:
        for name in ("keep_me", "bad_upload"):
            ids[name] = repo.upsert_metric(tx, name=name, group="web", labels={"host": "a"})
            repo.write_points(tx, ids[name], pd.Series(rng.normal(10, 1, len(idx)), index=idx))
        repo.write_label_windows(
            tx,
            [
                (
                    ids["bad_upload"],
                    START + pd.Timedelta("2h"),
                    START + pd.Timedelta("3h"),
                    "planted",
                    "t",
                    None,
                )
            ],
        )
    at = (START + pd.Timedelta("5h")).tz_localize(None)
    served.store.cursor().execute(
        "INSERT INTO anomalies (metric_id, detector, start_ts, end_ts, peak_ts, peak_score)"
        " VALUES (?, 'robust_bands', ?, ?, ?, 9.0)",
        [ids["bad_upload"], at, at + pd.Timedelta("3min"), at],
    )
    return ids


def _context(browser: Any, **kw: Any) -> Any:
    return browser.new_context(viewport={"width": 1400, "height": 900}, **kw)


def test_an_admin_deletes_a_metric_from_the_explorer(served: Served, browser: Any) -> None:
    ids = _plant(served)
    ctx = _context(browser, locale="ru-RU", timezone_id="Europe/Moscow")
    ctx.add_cookies(
        [{"name": SESSION_COOKIE, "value": E2E_SESSION, "domain": "127.0.0.1", "path": "/", "httpOnly": True}]
    )
    page = ctx.new_page()
    page.set_default_timeout(30_000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    asked: list[str] = []
    try:
        page.goto(f"{served.url}/explore/{ids['bad_upload']}")
        page.wait_for_selector("#main-chart.drawn")
        page.wait_for_function("() => window.__tw.stored.length === 1 && window.__tw.labels.length === 1")
        button = page.locator("#delete-metric")
        assert button.inner_text() == "Удалить метрику"
        assert button.is_enabled()
        # asked, and declined: nothing happens
        page.once("dialog", lambda d: (asked.append(d.message), d.dismiss()))
        button.click()
        page.wait_for_timeout(300)
        assert page.url.startswith(f"{served.url}/explore/")
        assert len(asked) == 1
        for part in ("Удалить метрику bad_upload{host=a}", "аномалии (1)", "окна (1)", "нельзя отменить"):
            assert part in asked[0], (part, asked[0])
        assert re.search(r"точки \(1\s440\)", asked[0]), asked[0]  # 1 440 points, in the locale
        points = served.store.cursor().execute(
            "SELECT count(*) FROM points WHERE metric_id = ?", [ids["bad_upload"]]
        )
        assert points.fetchone() == (1440,)
        # asked again, and accepted: deleted, back on the overview, which says so
        page.once("dialog", lambda d: (asked.append(d.message), d.accept()))
        button.click()
        page.wait_for_url(f"{served.url}/")
        notice = page.wait_for_selector("#page-notice")
        assert "Метрика bad_upload{host=a} удалена" in notice.inner_text()
        assert re.search(r"точек — 1\s440", notice.inner_text()), notice.inner_text()
        page.wait_for_selector("#metrics-table")
        table = page.inner_text("#metrics-table")
        assert "keep_me" in table
        assert "bad_upload" not in table
        page.screenshot(path=str(_shot("delete-metric-ru-overview")), full_page=True)
        cur = served.store.cursor()
        assert [m.name for m in repo.list_metrics(cur)] == ["keep_me"]
        for table_name in ("points", "anomalies", "label_windows"):
            n = cur.execute(f"SELECT count(*) FROM {table_name} WHERE metric_id = ?", [ids["bad_upload"]])
            assert n.fetchone() == (0,), table_name
        # the notice is shown once
        page.reload()
        page.wait_for_selector("#metrics-table")
        assert page.query_selector("#page-notice") is None
        assert not errors, errors
    finally:
        ctx.close()


def test_a_read_sign_in_sees_the_delete_button_disabled(served: Served, browser: Any) -> None:
    ids = _plant(served)
    ctx = _context(browser)
    page = ctx.new_page()
    page.set_default_timeout(30_000)
    try:
        page.goto(f"{served.url}/login?token={READ_TOKEN}&next=/explore/{ids['bad_upload']}")
        page.wait_for_selector("#main-chart.drawn")
        button = page.locator("#delete-metric")
        assert button.is_disabled()
        assert "admin" in (button.get_attribute("title") or "")
        status = page.evaluate(
            f"async () => (await fetch('/api/metrics/{ids['bad_upload']}', {{method: 'DELETE'}})).status"
        )
        assert status == 403
        assert len(repo.list_metrics(served.store.cursor())) == 2
    finally:
        ctx.close()


@pytest.mark.parametrize(
    ("lang", "words"), [("ru", "Метрики nope здесь нет"), ("en", "There is no metric nope")]
)
def test_an_unknown_metric_is_the_uis_not_found_page(
    served: Served, browser: Any, lang: str, words: str
) -> None:
    _plant(served)
    ctx = _context(browser, locale={"ru": "ru-RU", "en": "en-US"}[lang])
    ctx.add_cookies(
        [{"name": SESSION_COOKIE, "value": E2E_SESSION, "domain": "127.0.0.1", "path": "/", "httpOnly": True}]
    )
    page = ctx.new_page()
    page.set_default_timeout(30_000)
    try:
        for path in ("/explore?metric=nope", "/explore/999999"):
            response = page.goto(f"{served.url}{path}")
            assert response.status == 404
            assert "text/html" in response.headers["content-type"]
            assert page.get_attribute("html", "lang") == lang
            page.wait_for_selector("#not-found")
            if path.endswith("nope"):
                assert words in page.inner_text("#not-found")
        page.screenshot(path=str(_shot(f"not-found-{lang}")), full_page=True)
        page.click("#back-to-overview")
        page.wait_for_url(f"{served.url}/")
        page.wait_for_selector("#metrics-table")
    finally:
        ctx.close()


def _shot(name: str) -> Any:
    from .conftest import SCREENSHOTS

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS / f"{name}.png"
