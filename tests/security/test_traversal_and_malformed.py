"""Attacks that already failed (kept so they keep failing): path traversal through the open static paths
and the API, auth bypass by path tricks, and malformed requests — sent as raw bytes to a real uvicorn, so
no client library normalises them first. Nothing outside the served folders is read, nothing answers 5xx,
and the server keeps serving."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from support.auth import ADMIN_HEADERS, ADMIN_TOKEN, READ_TOKEN

from .conftest import Served, Site, csv_upload

pytestmark = pytest.mark.timeout(300)
# what must never come back: a system file, the process environment, our sources and templates
LEAK_MARKERS = ["root:x:0:0", "TELEWATCH_", "def install_web", "{% block", "[tool.pytest", "PATH="]
TRAVERSALS = [
    "/static/ui/../../../../../../etc/passwd",
    "/static/ui/..%2f..%2f..%2f..%2f..%2f..%2fetc%2fpasswd",
    "/static/ui/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    "/static/ui/%252e%252e/%252e%252e/%252e%252e/etc/passwd",
    "/static/ui/..\\..\\..\\..\\..\\etc\\passwd",
    "/static/ui/..%5c..%5c..%5c..%5cetc%5cpasswd",
    "/static/ui/....//....//....//etc/passwd",
    "/static/ui/%c0%ae%c0%ae/%c0%ae%c0%ae/%c0%ae%c0%ae/etc/passwd",
    "/static/ui/..;/..;/..;/etc/passwd",
    "/static/ui/../routes.py",
    "/static/ui/..%2froutes.py",
    "/static/ui/../templates/base.html",
    "/static/ui/%2e%2e%2ftemplates%2fbase.html",
    "/static/ui//etc/passwd",
    "/static/ui/%2fetc%2fpasswd",
    "/static/ui/%00../../../etc/passwd",
    "/static/ui/style.css%00.py",
    "/static/swagger/../../../../../../etc/passwd",
    "/static/swagger/..%2f..%2f..%2f..%2fetc%2fpasswd",
    "/static/plotly.min.js/../../../etc/passwd",
    "/static/ui/../../../../../../proc/self/environ",
    "/static/ui/../../../../../../proc/self/cmdline",
    "/static/ui/file:///etc/passwd",
    "/favicon.ico/../../etc/passwd",
    "/docs/../../../etc/passwd",
    "/login/..%2f..%2fetc%2fpasswd",
]
# an open path in front, a gated one behind: never the token list without credentials
AUTH_BYPASS = [
    "/static/../api/tokens",
    "/static/%2e%2e/api/tokens",
    "/static/ui/../../api/tokens",
    "/static/ui/..%2f..%2fapi%2ftokens",
    "/api/health/../tokens",
    "/api/health/..%2ftokens",
    "/login/../api/tokens",
    "/docs/../api/tokens",
    "//api/tokens",
    "/api//tokens",
    "/api/./tokens",
    "/API/tokens",
    "/api/tokens;/api/health",
    "/api/tokens%00/api/health",
    "/api/tokens#/api/health",
    "/api/health?/../tokens",
    "/%61pi/tokens",
]
# reads with a token: traversal in path parameters
AUTHORISED = [
    "/api/series/..%2f..%2f..%2f..%2fetc%2fpasswd",
    "/api/series/..%252f..%252fetc%252fpasswd",
    "/api/series/%2e%2e",
    "/api/decompose/..%2f..%2fetc%2fpasswd",
    "/api/forecast/..%2f..%2fetc%2fpasswd",
    "/api/forecast/group/..%2f..%2fetc%2fpasswd",
    "/explore/..%2f..%2fetc%2fpasswd",
    "/incidents/..%2f..%2fetc%2fpasswd",
    "/api/alerts/notifications/..%2f..%2fetc%2fpasswd/chart.png",
    "/api/series/cpu?from=..%2f..%2fetc%2fpasswd",
]


def raw(served: Served, request: bytes, *, timeout: float = 3) -> tuple[int | None, bytes]:
    """Send bytes as they are; the status code (None when the server closed without one) and the answer."""
    port = int(served.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(request)
        chunks = []
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
        except (TimeoutError, ConnectionResetError):
            pass
    data = b"".join(chunks)
    try:
        return int(data.split(b" ", 2)[1]), data
    except (IndexError, ValueError):
        return None, data


def get(served: Served, path: str, headers: str = "") -> tuple[int | None, bytes]:
    return raw(
        served, f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}Connection: close\r\n\r\n".encode()
    )


def _clean(status: int | None, body: bytes, what: str) -> None:
    assert status is None or status < 500, (what, status, body[:300])
    text = body.decode("latin-1")
    for marker in LEAK_MARKERS:
        assert marker not in text, (what, marker)


@pytest.mark.parametrize("path", TRAVERSALS)
def test_static_paths_serve_nothing_outside_their_folders(site: Site, path: str) -> None:
    status, body = get(site.served, path)
    assert status in (400, 401, 303, 404, 405), (path, status)
    _clean(status, body, path)


@pytest.mark.parametrize("path", AUTH_BYPASS)
def test_path_tricks_do_not_open_a_gated_route(site: Site, path: str) -> None:
    status, body = get(site.served, path)
    assert status != 200 or b"config#" not in body, (path, status)
    assert status in (400, 401, 303, 404, 405, 307) or b'"status":"ok"' in body, (path, status)
    _clean(status, body, path)


@pytest.mark.parametrize("path", AUTHORISED)
def test_path_parameters_are_data(site: Site, path: str) -> None:
    status, body = get(site.served, path, f"Authorization: Bearer {READ_TOKEN}\r\n")
    assert status in (400, 404, 422), (path, status, body[-300:])
    _clean(status, body, path)


@pytest.mark.parametrize(
    "name",
    [
        "../../../../tmp/telewatch-pwned.csv",
        "/tmp/telewatch-pwned.csv",
        "..\\..\\telewatch-pwned.csv",
        "a\x00b.csv",
    ],
)
def test_an_upload_file_name_writes_nothing_outside_the_store(
    client: TestClient, tmp_path: Path, name: str
) -> None:
    answer = client.post(
        "/api/ingest", files={"file": (name, csv_upload(["m"], rows=20), "text/csv")}, headers=ADMIN_HEADERS
    )
    assert answer.status_code in (200, 400, 422), answer.text
    assert not Path("/tmp/telewatch-pwned.csv").exists()
    assert not (tmp_path.parent / "telewatch-pwned.csv").exists()


def _req(method: str, path: str, headers: dict[str, str], body: bytes = b"") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    if body and "Content-Length" not in headers and "Transfer-Encoding" not in headers:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
JSON = {**AUTH, "Content-Type": "application/json"}
MALFORMED: list[tuple[str, bytes]] = [
    ("garbage", b"\x00\x01\x02\x03\r\n\r\n"),
    ("no method", b" / HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("HTTP/9", b"GET / HTTP/9.9\r\nHost: x\r\n\r\n"),
    ("no host", b"GET /api/health HTTP/1.1\r\nConnection: close\r\n\r\n"),
    ("long URL", _req("GET", "/api/series/" + "a" * 100_000, AUTH)),
    ("long header", _req("GET", "/api/health", {"X-Long": "b" * 100_000})),
    ("many headers", _req("GET", "/api/health", {f"X-H{i}": "v" for i in range(300)})),
    ("bad content-length", _req("POST", "/api/detect", {**JSON, "Content-Length": "abc"}, b"{}")),
    ("negative content-length", _req("POST", "/api/detect", {**JSON, "Content-Length": "-1"}, b"{}")),
    (
        "two content-lengths",
        b"POST /api/detect HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 40\r\n"
        + f"Authorization: Bearer {ADMIN_TOKEN}\r\n\r\n{{}}".encode(),
    ),
    (
        "bad chunk",
        _req("POST", "/api/detect", {**JSON, "Transfer-Encoding": "chunked"}, b"zz\r\n{}\r\n0\r\n\r\n"),
    ),
    (
        "CL and TE (smuggling)",
        _req(
            "POST",
            "/api/detect",
            {**JSON, "Content-Length": "4", "Transfer-Encoding": "chunked"},
            b"0\r\n\r\nGET /api/tokens HTTP/1.1\r\nHost: x\r\n\r\n",
        ),
    ),
    (
        "invalid UTF-8 path",
        b"GET /api/series/\xff\xfe\xfd HTTP/1.1\r\nHost: x\r\n"
        + f"Authorization: Bearer {ADMIN_TOKEN}\r\n".encode()
        + b"Connection: close\r\n\r\n",
    ),
    ("NUL in query", _req("GET", "/api/series/cpu?from=%00&to=%00", AUTH)),
    ("CRLF in query", _req("GET", "/login?next=/%0d%0aSet-Cookie:%20x=1", {})),
    ("bearer 20 kB", _req("GET", "/api/metrics", {"Authorization": "Bearer " + "t" * 20_000})),
    (
        "bearer latin-1",
        b"GET /api/metrics HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \xe9\xff\r\nConnection: close\r\n\r\n",
    ),
    ("bearer empty", _req("GET", "/api/metrics", {"Authorization": "Bearer "})),
    ("basic auth", _req("GET", "/api/metrics", {"Authorization": "Basic YWRtaW46YWRtaW4="})),
    ("bad cookie", _req("GET", "/", {"Cookie": 'telewatch_session="unterminated; x=\x7f'})),
    ("many cookies", _req("GET", "/", {"Cookie": "; ".join(f"c{i}=v" for i in range(500))})),
    ("invalid JSON", _req("POST", "/api/detect", JSON, b'{"metric": ')),
    ("deep JSON", _req("POST", "/api/detect", JSON, b'{"data": ' + b"[" * 50_000 + b"]" * 50_000 + b"}")),
    (
        "huge number",
        _req(
            "POST",
            "/api/detect",
            JSON,
            b'{"metric": "cpu", "threshold": 1e999, "detectors": [{"name": "robust_z"}]}',
        ),
    ),
    (
        "NaN",
        _req(
            "POST",
            "/api/detect",
            JSON,
            b'{"metric": "cpu", "threshold": NaN, "detectors": [{"name": "robust_z"}]}',
        ),
    ),
    (
        "lone surrogate",
        _req("POST", "/api/detect", JSON, b'{"metric": "\\ud800", "detectors": [{"name": "robust_z"}]}'),
    ),
    ("array body", _req("POST", "/api/detect", JSON, b"[1, 2, 3]")),
    ("empty body", _req("POST", "/api/detect", JSON)),
    ("text/plain body", _req("POST", "/api/detect", {**AUTH, "Content-Type": "text/plain"}, b"hello")),
    (
        "unknown detector",
        _req("POST", "/api/detect", JSON, b'{"metric": "cpu", "detectors": [{"name": "__import__"}]}'),
    ),
    (
        "hostile params",
        _req(
            "POST",
            "/api/detect",
            JSON,
            json.dumps(
                {
                    "metric": "cpu",
                    "detectors": [{"name": "robust_z", "params": {"window": 10**18, "__class__": "x"}}],
                }
            ).encode(),
        ),
    ),
    (
        "multipart without boundary",
        _req("POST", "/api/ingest", {**AUTH, "Content-Type": "multipart/form-data"}, b"x"),
    ),
    (
        "multipart bad boundary",
        _req(
            "POST",
            "/api/ingest",
            {**AUTH, "Content-Type": "multipart/form-data; boundary=zz"},
            b"--yy\r\nContent-Disposition: form-data; name=file\r\n\r\nx\r\n--yy--\r\n",
        ),
    ),
    (
        "multipart many parts",
        _req(
            "POST",
            "/api/ingest/preview",
            {**AUTH, "Content-Type": "multipart/form-data; boundary=b"},
            b"".join(b"--b\r\nContent-Disposition: form-data; name=f%d\r\n\r\nv\r\n" % i for i in range(5000))
            + b"--b--\r\n",
        ),
    ),
    ("TRACE", _req("TRACE", "/api/metrics", AUTH)),
    ("PROPFIND", _req("PROPFIND", "/", AUTH)),
    ("CONNECT", b"CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: 127.0.0.1:22\r\n\r\n"),
    ("absolute URI", _req("GET", "http://evil.example/api/metrics", AUTH)),
    (
        "login form flood",
        _req(
            "POST",
            "/login",
            {"Content-Type": "application/x-www-form-urlencoded"},
            b"&".join(b"token=%d" % i for i in range(20_000)),
        ),
    ),
]


@pytest.mark.parametrize(("what", "request_bytes"), MALFORMED, ids=[w for w, _ in MALFORMED])
def test_a_malformed_request_gets_a_4xx_and_the_server_keeps_serving(
    site: Site, what: str, request_bytes: bytes
) -> None:
    served = site.served
    status, body = raw(served, request_bytes)
    assert status is None or status < 500, (what, status, body[:400])
    _clean(status, body, what)
    assert b"set-cookie: x=1" not in body.partition(b"\r\n\r\n")[0].lower()  # no header injected
    health, _ = get(served, "/api/health")
    assert health == 200, what


def test_a_smuggled_request_is_not_answered_as_a_second_one(site: Site) -> None:
    served = site.served
    payload = _req(
        "POST",
        "/api/detect",
        {**JSON, "Content-Length": "4", "Transfer-Encoding": "chunked"},
        b"0\r\n\r\nGET /api/tokens HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    _, body = raw(served, payload)
    assert body.count(b"HTTP/1.1 200") == 0
    assert b"config#" not in body
