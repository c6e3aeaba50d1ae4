"""The sign-in page (``/login``) and sign-out (``/logout``) of the web UI.

Signing in with a token sets an HttpOnly, SameSite=Strict cookie holding a random session id (mapped
server-side to the token's hash, see :mod:`telewatch.services.sessions`); the token itself never goes to the
cookie.
``GET /login?code=…`` — the one-time link ``telewatch serve`` prints on a first start — signs in once,
within 15 minutes (:class:`telewatch.services.tokens.SignInCodes`); ``GET /login?token=…`` signs in
straight away. Both are refused when another site or origin started the navigation (a forced sign-in
into the attacker's account), as a cross-origin ``POST /login`` is.

Signing out is ``POST /logout`` from telewatch's own page (``Origin``, else ``Referer``, naming this
server; a ``Sec-Fetch-Site`` other than ``same-origin`` refused): another site can neither post to it nor
link to it, since ``GET /logout`` only shows a confirmation form and changes nothing. Messages go through
the UI's catalogues (:mod:`telewatch.web.i18n`), in the language the request asks for.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs

import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from telewatch import __version__
from telewatch.core.http import SESSION_COOKIE, safe_next, same_origin, session_id_from
from telewatch.services.sessions import Authenticator
from telewatch.services.tokens import hash_token
from telewatch.web import i18n

_HERE = Path(__file__).parent
_WRONG = "That token is not valid (unknown, revoked or expired)."
_SPENT = "That sign-in link was already used or has expired (links work once, for 15 minutes). Sign in with a token."
_ELSEWHERE = (
    "This sign-in link was opened from another site, so it was not used: open it yourself (paste it in the"
    " address bar), or sign in here."
)
_EMPTY = "Enter a token."
_FOREIGN_FORM = "Sign in from telewatch's own page."
_SIGN_OUT_ELSEWHERE = (
    "You were not signed out: the request came from another site. Sign out with the button below if you"
    " meant to."
)


def started_elsewhere(request: Request, base_url: str) -> bool:
    """Whether another site or origin started this navigation (a forced sign-in): the browser says so in
    ``Sec-Fetch-Site`` (``same-origin``, or ``none`` for a link pasted or opened from another program, are
    fine); without it, an ``Origin``/``Referer`` naming another origin."""
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return site.lower() not in ("same-origin", "none")
    if request.headers.get("origin") or request.headers.get("referer"):
        return not same_origin(dict(request.headers), base_url)
    return False


def install_login(app: FastAPI, *, authenticator: Authenticator) -> None:
    templates = Jinja2Templates(directory=str(_HERE / "templates"))

    def form(
        request: Request, *, next_url: str, error: str | None = None, status: int = 200, **kw: object
    ) -> Response:
        if error is not None:  # the message in the page's language (web/i18n/*.json)
            error = i18n.translate(i18n.negotiate(request), error)
        response = templates.TemplateResponse(
            request,
            "login.html",
            {"version": __version__, "next": next_url, "error": error, **kw},
            status_code=status,
        )
        response.headers["Cache-Control"] = "no-store"
        return response

    async def sign_in(request: Request, token_hash: str | None, next_url: str, *, error: str) -> Response:
        principal = await authenticator.verify_hash(token_hash) if token_hash else None
        if principal is None or token_hash is None:
            return form(request, next_url=next_url, error=error, status=401)
        session_id = await anyio.to_thread.run_sync(authenticator.sessions.create, token_hash)
        response = RedirectResponse(next_url, status_code=303)
        response.set_cookie(
            SESSION_COOKIE,
            session_id,
            max_age=int(authenticator.sessions.ttl_s),
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path="/",
        )
        response.headers["Cache-Control"] = "no-store"
        return response

    @app.get("/login", include_in_schema=False, response_model=None)
    async def login_page(
        request: Request, next: str | None = None, token: str | None = None, code: str | None = None
    ) -> Response:
        next_url = safe_next(next)
        if token is None and code is None:
            return form(request, next_url=next_url, signed_out=request.query_params.get("signed_out") == "1")
        if started_elsewhere(request, authenticator.base_url):
            return form(request, next_url="/", error=_ELSEWHERE, status=403)
        if code is not None:
            token_hash = authenticator.sign_in_codes.redeem(code.strip())
            return await sign_in(request, token_hash, next_url, error=_SPENT)
        token = (token or "").strip()
        return await sign_in(
            request,
            hash_token(token) if token else None,
            next_url,
            error=_WRONG if token else _EMPTY,
        )

    @app.post("/login", include_in_schema=False, response_model=None)
    async def login_submit(request: Request) -> Response:
        origin = request.headers.get("origin")
        if origin and not same_origin(dict(request.headers), authenticator.base_url):
            # another site posting a token into this form (login CSRF): refuse
            return form(request, next_url="/", error=_FOREIGN_FORM, status=403)
        try:
            fields = parse_qs((await request.body()).decode("utf-8", "replace"), max_num_fields=10)
        except ValueError:  # more fields than the form has: not our form
            return form(request, next_url="/", error=_FOREIGN_FORM, status=400)
        next_url = safe_next((fields.get("next") or ["/"])[0])
        token = (fields.get("token") or [""])[0].strip()
        return await sign_in(
            request,
            hash_token(token) if token else None,
            next_url,
            error=_WRONG if token else _EMPTY,
        )

    def logout_form(request: Request, *, error: str | None = None, status: int = 200) -> Response:
        if error is not None:
            error = i18n.translate(i18n.negotiate(request), error)
        response = templates.TemplateResponse(
            request, "logout.html", {"version": __version__, "error": error}, status_code=status
        )
        response.headers["Cache-Control"] = "no-store"
        return response

    @app.get("/logout", include_in_schema=False, response_model=None)
    def logout_page(request: Request) -> Response:
        # a GET never signs out (a link or redirect from another site could): it asks, with a form
        if started_elsewhere(request, authenticator.base_url):
            return logout_form(request, error=_SIGN_OUT_ELSEWHERE, status=403)
        return logout_form(request)

    @app.post("/logout", include_in_schema=False, response_model=None)
    async def logout(request: Request) -> Response:
        session_id = session_id_from({"cookie": request.headers.get("cookie", "")})
        site = (request.headers.get("sec-fetch-site") or "same-origin").lower()
        if session_id and (
            site != "same-origin" or not same_origin(dict(request.headers), authenticator.base_url)
        ):
            # another site (or another port of this host) posting here: the user stays signed in
            return logout_form(request, error=_SIGN_OUT_ELSEWHERE, status=403)
        if session_id:  # (none: nothing to end, e.g. a tab left open after signing out elsewhere)
            await anyio.to_thread.run_sync(authenticator.sessions.delete, session_id)
        response = RedirectResponse("/login?signed_out=1", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
        return response
