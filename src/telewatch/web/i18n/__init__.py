"""The UI's languages: message catalogues a translator can edit (``en.json``, ``ru.json`` next to this
file: one JSON object, the English text as the key, the translation as the value, ``{name}``
placeholders kept as they are), the language a request asks for, and numbers in that language.

Babel is not a dependency of telewatch, so the catalogues are plain JSON rather than gettext ``.po``
files; a key missing from a catalogue falls back to the English text (and the browser test that walks
every page in Russian fails on it)."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from functools import cache
from pathlib import Path

from starlette.requests import Request

from telewatch.core.errors import ConfigError
from telewatch.incidents.types import load_rules

LANGUAGES = ("en", "ru")
DEFAULT = "en"
COOKIE = "tw_lang"  # the language the user chose (the switch in the header, or ?lang=)
_HERE = Path(__file__).parent


@cache
def catalogue(lang: str) -> dict[str, str]:
    """The messages of ``lang`` (an empty dict for English keys translated as themselves)."""
    path = _HERE / f"{lang}.json"
    data = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    words = {str(k): str(v) for k, v in data.items() if v}
    return {**_incident_type_titles(lang), **words}


def _incident_type_titles(lang: str) -> dict[str, str]:
    """The incident types' titles in ``lang`` (their ``titles`` in the rule file), so the UI names a
    type as alerts do, from one place. A rule file that cannot be read adds nothing."""
    try:
        rules = load_rules()
    except ConfigError:
        return {}
    return {t.title: t.titles[lang] for t in rules.types if lang in t.titles}


def translate(lang: str, text: str, /, **params: object) -> str:
    """``text`` in ``lang`` with ``{name}`` placeholders filled.

    >>> translate("ru", "Overview")
    'Обзор'
    >>> translate("xx", "{n} points", n=3)
    '3 points'
    """
    out = catalogue(lang).get(text) or catalogue(DEFAULT).get(text) or text
    return out.format(**params) if params else out


def accept_language(header: str | None) -> str | None:
    """The first of LANGUAGES that an ``Accept-Language`` header prefers (by q), or None.

    >>> accept_language("ru-RU,ru;q=0.9,en-US;q=0.8,en;q=0.7")
    'ru'
    >>> accept_language("de-DE,en;q=0.5,ru;q=0.4")
    'en'
    >>> accept_language("fr") is None
    True
    """
    choices: list[tuple[float, int, str]] = []
    for i, part in enumerate((header or "").split(",")):
        tag, _, rest = part.strip().partition(";")
        q = 1.0
        if rest.strip().startswith("q="):
            try:
                q = float(rest.strip()[2:])
            except ValueError:
                q = 0.0
        base = tag.strip().lower().split("-")[0]
        if base in LANGUAGES and q > 0:
            choices.append((-q, i, base))
    return min(choices)[2] if choices else None


def negotiate(request: Request) -> str:
    """``?lang=`` first, then the user's choice (cookie), then the browser's ``Accept-Language``."""
    for value in (request.query_params.get("lang"), request.cookies.get(COOKIE)):
        if value and value.lower() in LANGUAGES:
            return value.lower()
    return accept_language(request.headers.get("accept-language")) or DEFAULT


def fmt_int(value: float | int | None, lang: str) -> str:
    """A whole number with the locale's thousands separator (a narrow no-break space in Russian).

    >>> fmt_int(1234567, "en"), fmt_int(1234567, "ru")
    ('1,234,567', '1\u202f234\u202f567')
    """
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    text = f"{round(value):,}"
    return text.replace(",", "\u202f") if lang == "ru" else text


def fmt_dec(value: float | None, lang: str, digits: int = 2) -> str:
    """A number with ``digits`` decimals, in the locale (decimal comma in Russian).

    >>> fmt_dec(12.345, "en"), fmt_dec(12.345, "ru")
    ('12.35', '12,35')
    """
    if value is None or not math.isfinite(value):
        return "—"
    text = f"{value:,.{digits}f}"
    if lang == "ru":
        return text.replace(",", "\u202f").replace(".", ",")
    return text


def template_words(request: Request) -> dict[str, object]:
    """What a page template uses: ``lang``, ``_(text, **params)``, ``num(x)``, ``dec(x, digits)`` and
    the scripts' catalogue ``i18n_data``, in the language the request asks for."""
    lang = negotiate(request)
    return {
        "lang": lang,
        "_": lambda text, **kw: translate(lang, text, **kw),
        "num": lambda x: fmt_int(x, lang),
        "dec": lambda x, digits=2: fmt_dec(x, lang, digits),
        "i18n_data": js_catalogue(lang),
    }


def js_catalogue(lang: str) -> Mapping[str, object]:
    """What the page scripts read (``<script type="application/json" id="i18n-data">``)."""
    return {"lang": lang, "messages": {k: v for k, v in catalogue(lang).items() if k != v}}
