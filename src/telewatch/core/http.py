"""HTTP conventions shared by the API's auth gate (:mod:`telewatch.api.auth`) and the sign-in pages
(:mod:`telewatch.web.login`): the UI session cookie's name, reading it from a ``Cookie`` header, the
same-origin check of a signed-in write, and the post-sign-in redirect target.

Plain functions over a lower-cased header dict (standard library only), so that ``api/`` and ``web/`` share
them without either importing the other.
"""

from __future__ import annotations

from http.cookies import SimpleCookie
from urllib.parse import urlsplit

SESSION_COOKIE = "telewatch_session"


def session_id_from(headers: dict[str, str]) -> str | None:
    """The UI session id in a request's ``Cookie`` header, or None (also for a malformed header).

    >>> session_id_from({"cookie": "a=1; telewatch_session=abc"}), session_id_from({})
    ('abc', None)
    """
    raw = headers.get("cookie")
    if not raw:
        return None
    cookie: SimpleCookie = SimpleCookie()
    try:
        cookie.load(raw)
    except Exception:  # a malformed Cookie header: treat as no session
        return None
    morsel = cookie.get(SESSION_COOKIE)
    return morsel.value if morsel is not None and morsel.value else None


def same_origin(headers: dict[str, str], base_url: str) -> bool:
    """Whether ``Origin`` (else ``Referer``) names this server: the request's ``Host`` or ``base_url``'s host.

    >>> same_origin({"origin": "http://tw:8000", "host": "tw:8000"}, "")
    True
    >>> same_origin({"origin": "https://evil.example", "host": "tw:8000"}, "https://tw.example")
    False
    """
    origin = headers.get("origin") or headers.get("referer")
    if not origin or origin == "null":
        return False
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return False
    allowed = {headers.get("host", "").lower(), urlsplit(base_url).netloc.lower()} - {""}
    return parts.netloc.lower() in allowed


def safe_next(target: str | None) -> str:
    """A post-sign-in redirect target: a local path only (no open redirect to another site).

    >>> safe_next("/explore?x=1"), safe_next("//evil.example/"), safe_next("https://evil.example/")
    ('/explore?x=1', '/', '/')
    """
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target
