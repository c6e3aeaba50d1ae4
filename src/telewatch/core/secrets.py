"""Secret redaction: one place that keeps passwords and tokens out of logs, errors and API bodies.

``redact(text, secrets=...)`` masks

* every literal secret passed in ``secrets`` (database passwords, bot tokens, API tokens…);
* the password part of any URL/DSN: ``scheme://user:PASSWORD@host`` → ``scheme://user:***@host``;
* Telegram bot tokens in Bot API URLs: ``/bot123456:ABC…/`` → ``/bot***/``;
* ``password=…``/``pwd=…``/``secret=…``/``token=…`` key-value pairs (libpq keyword DSNs, query strings);
* ``Authorization: Bearer …`` header values.

``RedactingFilter`` is a :class:`logging.Filter` that applies the same masking to every record
(message, arguments and exception text); ``install_redacting_filter()`` puts one on the root
logger's handlers. Secrets known at run time are added with ``register_secret(...)`` — every
``RedactingFilter`` (and ``redact`` itself) also masks them.

>>> redact("postgresql://tw:s3cr3t@db:5432/tw")
'postgresql://tw:***@db:5432/tw'
>>> redact("POST https://api.telegram.org/bot123:AAE-x_y/sendMessage failed")
'POST https://api.telegram.org/bot***/sendMessage failed'
>>> redact("login failed for hunter2", secrets=["hunter2"])
'login failed for ***'
>>> redact("host=db user=tw password=s3cr3t dbname=tw")
'host=db user=tw password=*** dbname=tw'
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import quote, unquote_plus, urlsplit, urlunsplit

__all__ = [
    "MASK",
    "RedactingFilter",
    "install_redacting_filter",
    "install_redacting_record_factory",
    "is_secret_key",
    "mask_url",
    "redact",
    "redact_mapping",
    "register_secret",
    "registered_secrets",
    "uninstall_redacting_record_factory",
]

MASK = "***"

# scheme://user:password@  (password = anything up to the last '@' before the host part)
_URL_PASSWORD = re.compile(r"(?P<pre>\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s:/@'\"]*:)(?P<pw>[^\s@'\"]+)@")
# /bot<token>/ in Telegram Bot API URLs (token is "<digits>:<base64-ish>", accept anything up to '/')
_BOT_TOKEN = re.compile(r"(?P<pre>/bot)(?P<tok>[^/\s'\"]+)(?=/)")
# key=value / key: value pairs whose key names a secret (libpq DSNs, query strings, repr of dicts)
_KV_SECRET = re.compile(
    r"(?P<pre>\b(?:password|passwd|pwd|secret|token|api_key|apikey|bot_token|smtp_password|api_tokens)"
    r"['\"]?\s*(?:=|:)\s*['\"]?)(?P<val>[^\s&,;'\"}]+)",
    re.IGNORECASE,
)
# key=value in a query string whose key, once percent-decoded, names a secret: ?%74oken=… is ?token=…
_QUERY_PAIR = re.compile(r"(?P<pre>[?&;](?P<key>(?:[A-Za-z0-9_.\-]|%[0-9A-Fa-f]{2})+)=)(?P<val>[^\s&;#'\"]*)")
_QUERY_SECRET_KEYS = frozenset(
    {"password", "passwd", "pwd", "secret", "token", "api_key", "apikey", "bot_token", "code", "sig", "key"}
)
_BEARER = re.compile(r"(?P<pre>\bBearer\s+)(?P<tok>[A-Za-z0-9._~+/=\-]+)", re.IGNORECASE)

_SECRET_KEY = re.compile(r"(password|passwd|pwd|secret|token|api_key|apikey|credential)", re.IGNORECASE)

_MIN_SECRET_LEN = 4  # literal secrets shorter than this would mask ordinary words; they are skipped

_registry_lock = threading.Lock()
_registry: set[str] = set()


def register_secret(*values: str | None) -> None:
    """Remember secrets known at run time so every later ``redact``/``RedactingFilter`` masks them.

    Empty values and values shorter than 4 characters are ignored.

    >>> register_secret("tw-registered-example")
    >>> redact("x tw-registered-example y")
    'x *** y'
    """
    with _registry_lock:
        for value in values:
            if value and len(value) >= _MIN_SECRET_LEN:
                _registry.add(value)


def registered_secrets() -> frozenset[str]:
    """The secrets registered with :func:`register_secret` so far."""
    with _registry_lock:
        return frozenset(_registry)


def _unwrap(value: Any) -> str | None:
    if value is None:
        return None
    getter = getattr(value, "get_secret_value", None)
    if callable(getter):
        value = getter()
    return value if isinstance(value, str) else str(value)


def redact(text: str, secrets: Iterable[Any] = ()) -> str:
    """Return ``text`` with every secret it contains replaced by ``***``.

    ``secrets`` may hold plain strings or pydantic ``SecretStr`` values; ``None``/empty entries are ignored.
    A secret is also masked in its URL-encoded form, and whatever its value, so are URL passwords,
    Telegram bot tokens, ``password=``/``token=``-style values and ``Bearer`` tokens.

    >>> redact("connect failed: postgresql://bob:hunter2@db/x password=hunter2", ["hunter2"])
    'connect failed: postgresql://bob:***@db/x password=***'
    >>> redact("GET https://hook/x?key=a%2Fb%3Dc failed", ["a/b=c"])
    'GET https://hook/x?key=*** failed'
    """
    if not text:
        return text
    literal = {s for s in (_unwrap(v) for v in secrets) if s and len(s) >= _MIN_SECRET_LEN}
    literal |= registered_secrets()
    literal |= {quote(s, safe="") for s in literal}  # as it appears inside a URL
    # longest first, so a secret containing another is masked whole
    for secret in sorted(literal, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, MASK)
    text = _URL_PASSWORD.sub(lambda m: m.group("pre") + MASK + "@", text)
    text = _BOT_TOKEN.sub(lambda m: m.group("pre") + MASK, text)
    text = _KV_SECRET.sub(lambda m: m.group("pre") + MASK, text)
    text = _QUERY_PAIR.sub(_mask_query_pair, text)
    text = _BEARER.sub(lambda m: m.group("pre") + MASK, text)
    return text


def _mask_query_pair(m: re.Match[str]) -> str:
    key = unquote_plus(m.group("key")).strip().lower()
    if m.group("val") and (key in _QUERY_SECRET_KEYS or is_secret_key(key)):
        return m.group("pre") + MASK
    return m.group(0)


def mask_url(url: object) -> str:
    """A URL safe to show anyone who may read the configuration: only its scheme, host and port stay.

    The one masking of secret-bearing URLs (channel endpoints, API bases, webhooks) in every output —
    ``describe()``, the API, the UI and the CLI. Everything that may carry a credential is masked whatever
    its length: the userinfo (``user:password@``), every path segment past the host (Slack-style hook URLs
    carry their secret there), every query value (``?sig=…``) and the fragment. Query keys stay, so a
    reader can still tell two endpoints of one host apart. Text that is not an absolute URL is passed
    through :func:`redact`.

    >>> mask_url("http://bob:hunter2@hooks.example:8080/shortsecret7?sig=abc1234&v=2#frag")
    'http://***@hooks.example:8080/***?sig=***&v=***#***'
    >>> mask_url("https://api.telegram.org"), mask_url("https://api.telegram.org/")
    ('https://api.telegram.org', 'https://api.telegram.org/')
    >>> mask_url("not a url password=x1")
    'not a url password=***'
    """
    text = str(url)
    try:
        parts = urlsplit(text)
        host = parts.hostname
        port = parts.port
    except ValueError:  # a malformed port or IPv6 literal: show none of it
        return MASK
    if not parts.scheme or not parts.netloc or host is None:
        return redact(text)
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc += f":{port}"
    if "@" in parts.netloc:
        netloc = f"{MASK}@{netloc}"
    path = parts.path if parts.path in ("", "/") else "/" + MASK
    query = "&".join(
        f"{pair.partition('=')[0]}={MASK}" if "=" in pair else MASK
        for pair in re.split(r"[&;]", parts.query)
        if pair
    )
    return urlunsplit((parts.scheme, netloc, path, query, MASK if parts.fragment else ""))


def is_secret_key(key: str) -> bool:
    """Whether a configuration key names a secret (``password``, ``bot_token``, ``api_tokens``…).

    >>> is_secret_key("smtp_password"), is_secret_key("host")
    (True, False)
    """
    return bool(_SECRET_KEY.search(key))


def redact_mapping(data: Any, secrets: Iterable[Any] = ()) -> Any:
    """Deep-copy ``data`` (dicts/lists/strings) masking secret-named keys' values and secret text in strings.

    >>> redact_mapping({"host": "db", "password": "pw", "dsn": "postgresql://u:pw1234@h/d"})
    {'host': 'db', 'password': '***', 'dsn': 'postgresql://u:***@h/d'}
    """
    secrets = list(secrets)
    if isinstance(data, Mapping):
        out: dict[Any, Any] = {}
        for key, value in data.items():
            if isinstance(key, str) and is_secret_key(key) and value not in (None, "", [], {}):
                out[key] = MASK if not isinstance(value, Mapping | list) else redact_mapping(value, secrets)
            else:
                out[key] = redact_mapping(value, secrets)
        return out
    if isinstance(data, list | tuple):
        return type(data)(redact_mapping(v, secrets) for v in data)
    if isinstance(data, str):
        return redact(data, secrets)
    getter = getattr(data, "get_secret_value", None)
    if callable(getter):
        return MASK
    return data


class RedactingFilter(logging.Filter):
    """Logging filter that masks secrets in a record's message, arguments and exception text.

    >>> import logging, io
    >>> stream = io.StringIO()
    >>> handler = logging.StreamHandler(stream)
    >>> handler.addFilter(RedactingFilter(secrets=["hunter2"]))
    >>> log = logging.getLogger("telewatch.doctest.redact")
    >>> log.addHandler(handler); log.propagate = False
    >>> log.warning("connect %s failed (pw hunter2)", "postgresql://u:pw99@h/d")
    >>> stream.getvalue().strip()
    'connect postgresql://u:***@h/d failed (pw ***)'
    """

    def __init__(self, secrets: Iterable[Any] = (), name: str = "") -> None:
        super().__init__(name)
        self._secrets = [s for s in (_unwrap(v) for v in secrets) if s]

    def add_secret(self, *values: Any) -> None:
        """Mask these values too from now on."""
        self._secrets.extend(s for s in (_unwrap(v) for v in values) if s)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: leave formatting errors to logging itself
            return True
        clean = redact(message, self._secrets)
        if clean != message:
            # Redact the arguments one by one where that suffices: some formatters (uvicorn's access
            # log) read record.args. Otherwise fall back to the redacted, pre-formatted message.
            if isinstance(record.msg, str) and isinstance(record.args, tuple):
                record.msg = redact(record.msg, self._secrets)
                record.args = tuple(self._redact_arg(a) for a in record.args)
                try:
                    still = record.getMessage()
                except Exception:
                    still = message
                if redact(still, self._secrets) != still:
                    record.msg, record.args = clean, None
            else:
                record.msg, record.args = clean, None
        if record.exc_info and record.exc_info[1] is not None and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text, self._secrets)
        if record.stack_info:
            record.stack_info = redact(record.stack_info, self._secrets)
        return True

    def _redact_arg(self, arg: Any) -> Any:
        if isinstance(arg, str):
            return redact(arg, self._secrets)
        if arg is None or isinstance(arg, bool | int | float):
            return arg
        text = str(arg)
        clean = redact(text, self._secrets)
        return arg if clean == text else clean


def install_redacting_filter(
    secrets: Iterable[Any] = (), logger: logging.Logger | None = None
) -> RedactingFilter:
    """Attach one :class:`RedactingFilter` to ``logger`` (root by default) and to its handlers.

    Idempotent: a second call adds the new secrets to the filter already installed and returns it.
    Logger-level filters only see records logged on that logger itself, so the filter also goes on every
    existing handler (records from child loggers pass through those).
    """
    target = logger or logging.getLogger()
    existing = next((f for f in target.filters if isinstance(f, RedactingFilter)), None)
    flt = existing or RedactingFilter(secrets)
    if existing is not None:
        existing.add_secret(*secrets)
    else:
        target.addFilter(flt)
    for handler in target.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(flt)
    register_secret(*(s for s in (_unwrap(v) for v in secrets) if s))
    return flt


_factory_filter: RedactingFilter | None = None


def install_redacting_record_factory(secrets: Iterable[Any] = ()) -> RedactingFilter:
    """Redact every log record of the process when it is created, whatever logger or handler it goes to.

    Idempotent; later calls add secrets. Records are masked by a :class:`RedactingFilter` (the patterns,
    the secrets given here and those registered with :func:`register_secret`).
    """
    global _factory_filter
    secrets = list(secrets)
    register_secret(*(s for s in (_unwrap(v) for v in secrets) if s))
    if _factory_filter is not None:
        _factory_filter.add_secret(*secrets)
        return _factory_filter
    flt = RedactingFilter(secrets)
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        flt.filter(record)
        return record

    logging.setLogRecordFactory(factory)
    _factory_filter = flt
    _previous_factory.append(previous)
    return flt


_previous_factory: list[Callable[..., logging.LogRecord]] = []


def uninstall_redacting_record_factory() -> None:
    """Undo :func:`install_redacting_record_factory` (for tests); a no-op when it is not installed."""
    global _factory_filter
    if _factory_filter is None:
        return
    logging.setLogRecordFactory(_previous_factory.pop())
    _factory_filter = None
