"""Pages of the web UI. Thin: data comes from the same services as the API."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from telewatch import __version__
from telewatch.services import catalog
from telewatch.store.db import Store

_HERE = Path(__file__).parent


def install_web(app: FastAPI, *, plotly_js: Path) -> None:
    templates = Jinja2Templates(directory=str(_HERE / "templates"))
    app.mount("/static/ui", StaticFiles(directory=_HERE / "static"), name="ui")

    @app.get("/static/plotly.min.js", include_in_schema=False)
    def plotly() -> FileResponse:
        return FileResponse(
            plotly_js, media_type="application/javascript", headers={"Cache-Control": "max-age=86400"}
        )

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def index(request: Request, group: str | None = None) -> HTMLResponse:
        store: Store = request.app.state.store
        everything = catalog.list_metrics(store)
        groups = sorted({m.group for m in everything if m.group})
        shown = [m for m in everything if group is None or m.group == group]
        return templates.TemplateResponse(
            request,
            "index.html",
            {"metrics": shown, "groups": groups, "group": group, "version": __version__},
        )
