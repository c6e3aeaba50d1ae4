"""Pages of the web UI. Thin: data comes from the same services as the API; every action the
pages take is an API call (see docs/ui.md)."""

from __future__ import annotations

import functools
import gzip
import json
import math
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.middleware.gzip import GZipMiddleware
from starlette.types import Scope

from telewatch import __version__
from telewatch.core.errors import NotFoundError, TelewatchError
from telewatch.services import catalog, overview
from telewatch.store.db import Store
from telewatch.web import i18n

_HERE = Path(__file__).parent
_RANGE_HOURS = {"1h": 1, "6h": 6, "24h": 24, "7d": 7 * 24, "30d": 30 * 24}


def sparkline(values: list[float | None], *, width: int = 160, height: int = 28) -> str:
    """An inline SVG polyline of the values (gaps break the line; a lone point between gaps is a dot).

    >>> svg = sparkline([1.0, 2.0, None, 3.0])
    >>> svg.count("<polyline"), svg.count("<circle")
    (1, 1)
    """
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return f'<svg class="spark" width="{width}" height="{height}"></svg>'
    lo, hi = min(finite), max(finite)
    span = (hi - lo) or 1.0
    step = width / max(1, len(values) - 1)
    runs: list[list[str]] = [[]]
    for i, v in enumerate(values):
        if v is None or not math.isfinite(v):
            if runs[-1]:
                runs.append([])
            continue
        y = height - 2 - (v - lo) / span * (height - 4)
        runs[-1].append(f"{i * step:.1f},{y:.1f}")
    lines = "".join(
        f'<polyline points="{" ".join(r)}"/>'
        if len(r) > 1
        else '<circle cx="{}" cy="{}" r="1.5"/>'.format(*r[0].split(","))
        for r in runs
        if r
    )
    return (
        f'<svg class="spark" width="{width}" height="{height}" viewBox="0 0 {width} {height}">{lines}</svg>'
    )


class CachedStatic(StaticFiles):
    """The UI's scripts and styles with a cache lifetime (an ETag revalidates them after it)."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        if response.status_code in (200, 304):
            response.headers["Cache-Control"] = "public, max-age=3600"
        return response


@functools.cache
def _gzipped(path: Path) -> bytes:
    return gzip.compress(path.read_bytes(), compresslevel=6)


_HTML_JSON_ESCAPES = str.maketrans(
    {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
)


def json_for_html(data: object) -> str:
    r"""JSON to embed in a page (``<script type="application/json">``, an attribute): no ``<``, ``>``,
    ``&``, U+2028 or U+2029 left, so no value — a metric named ``<!--<script>`` or ``</script>`` — can
    end the block, open a comment that swallows the page, or break a line in a script. ``JSON.parse``
    reads the escapes back as the same characters.

    >>> print(json_for_html({"name": "<!--<script>&\u2028"}))
    {"name": "\u003c!--\u003cscript\u003e\u0026\u2028"}
    """
    return json.dumps(data).translate(_HTML_JSON_ESCAPES)


def install_web(app: FastAPI, *, plotly_js: Path) -> None:
    templates = Jinja2Templates(directory=str(_HERE / "templates"))
    templates.env.globals["spark"] = sparkline
    app.mount("/static/ui", CachedStatic(directory=_HERE / "static"), name="ui")
    # pages, scripts and JSON answers compressed (Plotly is compressed once, below)
    app.add_middleware(GZipMiddleware, minimum_size=1024, compresslevel=6)

    # pages rendered elsewhere (sign-in, tokens) get the same words through base.html / login.html
    app.state.ui_words = i18n.template_words

    def page(request: Request, name: str, key: str, **context: object) -> HTMLResponse:
        words = i18n.template_words(request)  # ?lang=, the user's choice (cookie), Accept-Language
        response = templates.TemplateResponse(
            request, name, {"page": key, "version": __version__, **words, **context}
        )
        lang = str(words["lang"])
        if request.query_params.get("lang") in i18n.LANGUAGES:  # the switch: remembered for a year
            response.set_cookie(i18n.COOKIE, lang, max_age=365 * 86400, samesite="lax")
        response.headers["Vary"] = "Accept-Language, Cookie"
        return response

    def not_found(request: Request, what: str) -> HTMLResponse:
        """The UI's own 404 (translated, with a way back) for a page naming something that is not here."""
        response = page(request, "notfound.html", "explore", what=what)
        response.status_code = 404
        return response

    @app.get("/static/plotly.min.js", include_in_schema=False)
    def plotly(request: Request) -> Response:
        # 4.8 MB, 1.4 MB gzipped: compressed once and kept; cached a week by the browser
        headers = {"Cache-Control": "public, max-age=604800", "Vary": "Accept-Encoding"}
        body = plotly_js.read_bytes() if "gzip" not in request.headers.get("accept-encoding", "") else None
        if body is None:
            body = _gzipped(plotly_js)
            headers["Content-Encoding"] = "gzip"
        return Response(body, media_type="application/javascript", headers=headers)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def index(
        request: Request, group: str | None = None, selector: str | None = None, range: str | None = None
    ) -> HTMLResponse:
        store: Store = request.app.state.store
        groups = sorted({m.group for m in catalog.list_metrics(store) if m.group})
        error = None
        hours = _RANGE_HOURS.get(range or "24h", 24)  # the time picker's ?range= (timerange.js)
        try:
            rows = overview.summarize_metrics(
                store, group=group or None, selector=catalog.parse_selector(selector), hours=hours
            )
        except TelewatchError as exc:
            rows, error = [], str(exc)
        rows.sort(key=lambda r: (r.state != "anomalous", -r.anomaly_rate))
        return page(
            request,
            "index.html",
            "overview",
            summaries=rows,
            groups=groups,
            group=group,
            selector=selector,
            error=error,
            hours=hours,
        )

    @app.get("/explore", response_class=HTMLResponse, include_in_schema=False)
    @app.get("/explore/{metric_id}", response_class=HTMLResponse, include_in_schema=False)
    def explore(
        request: Request, metric_id: int | None = None, metric: str | None = None, labels: str | None = None
    ) -> HTMLResponse:
        store: Store = request.app.state.store
        metrics = catalog.list_metrics(store)
        if metric_id is None and metric:  # links in alerts name the metric and its slice
            try:
                metric_id = catalog.get_metric(store, metric, catalog.parse_selector(labels)).id
            except NotFoundError:
                return not_found(request, metric + (f"{{{labels}}}" if labels else ""))
        if metric_id is not None and all(m.id != metric_id for m in metrics):
            return not_found(request, f"#{metric_id}")
        if metric_id is None and metrics:
            metric_id = metrics[0].id
        data = [
            {
                "id": m.id,
                "name": m.name,
                "display": m.display_name,
                "labels": m.labels,
                "group": m.group,
                "unit": m.unit,
                "points": m.points,
                "first": int(m.first_ts.value // 1_000_000) if m.first_ts is not None else None,
                "last": int(m.last_ts.value // 1_000_000) if m.last_ts is not None else None,
            }
            for m in metrics
        ]
        return page(
            request,
            "explore.html",
            "explore",
            metrics=metrics,
            metric_id=metric_id,
            metrics_json=json_for_html(data),
        )

    @app.get("/scan", response_class=HTMLResponse, include_in_schema=False)
    def scan(request: Request) -> HTMLResponse:
        store: Store = request.app.state.store
        metrics = catalog.list_metrics(store)
        groups = sorted({m.group for m in metrics if m.group})
        return page(request, "scan.html", "scan", metrics=metrics, groups=groups)

    @app.get("/upload", response_class=HTMLResponse, include_in_schema=False)
    def upload(request: Request) -> HTMLResponse:
        return page(request, "upload.html", "upload")

    @app.get("/incidents", response_class=HTMLResponse, include_in_schema=False)
    def incidents(request: Request) -> HTMLResponse:
        return page(request, "incidents.html", "incidents", incident_id=None)

    @app.get("/incidents/{incident_id}", response_class=HTMLResponse, include_in_schema=False)
    def incident(request: Request, incident_id: int) -> HTMLResponse:
        return page(request, "incident.html", "incidents", incident_id=incident_id)

    @app.get("/alerts", response_class=HTMLResponse, include_in_schema=False)
    def alerts(request: Request) -> HTMLResponse:
        return page(request, "alerts.html", "alerts")
