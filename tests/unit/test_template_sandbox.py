"""User-supplied alert templates render in a hardened sandbox: no code execution, no hang, no memory
blow-up; refused at configuration load (ConfigError naming the file) or at render (SecurityError);
normal templates still render, HTML autoescaped. Link templates cannot reach attributes either."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
import yaml
from jinja2.exceptions import SecurityError

from telewatch.alerts.config import LINK_FIELDS, Links, format_link, load_alerting_config
from telewatch.alerts.render import AlertEvent, Renderer, _environment, check_templates
from telewatch.alerts.rules import sample_candidate
from telewatch.core.errors import ConfigError

NOW = pd.Timestamp("2026-11-23 12:00", tz="UTC")

ESCAPES = [
    "{{ ''.__class__.__mro__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "{{ joiner.__init__.__globals__ }}",
    "{{ namespace.__init__.__globals__ }}",
    "{{ self._TemplateReference__context }}",
    "{{ (1).__class__.__base__ }}",
    "{{ first|attr('__class__') }}",
    "{{ first.__class__ }}",
    "{{ ''.format.__globals__ }}",
    "{% set x = ''.__class__ %}{{ x }}",
]

BLOW_UPS = [
    "{{ range(10**9)|list|length }}",
    "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
    "{{ 9**(9**9) }}",
    "{{ 'a' * 10**9 }}",
    "{% set ns = namespace(s='xx') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
    "{% set ns = namespace(s='xx') %}{% for i in range(64) %}{% set ns.s = ns.s + ns.s %}{% endfor %}",
    "{% set ns = namespace(x=3) %}{% for i in range(40) %}{% set ns.x = ns.x * ns.x %}{% endfor %}",
    "{{ '%0999999999d' % 1 }}",
    "{{ '%0999999999d'|format(1) }}",
    "{{ '{:>999999999}'.format(1) }}",
    "{{ 'a'|center(10**9) }}",
    "{{ 'x'|indent(10**9) }}",
    "{{ [1]|slice(10**9)|list }}",
    "{{ [1]|batch(10**9, 0)|list }}",
    "{{ {}|tojson(indent=10**9) }}",
    "{{ range(100000)|join('x' * 100000) }}",
    "{{ ('a' * 1000)|replace('a', 'a' * 1000)|replace('a', 'a' * 1000) }}",
    "{% macro f(n) %}{% if n > 0 %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(40) }}",
    "{% for i in range(100000) %}{{ 'y' * 100 }}{% endfor %}",
]


def render(source: str) -> str:
    return _environment(None).from_string(source).render(first={"metric": "m"})


@pytest.mark.parametrize("payload", ESCAPES)
def test_escapes_to_python_internals_are_refused(payload: str) -> None:
    with pytest.raises(SecurityError, match="unsafe"):
        render(payload)


def test_lipsum_is_gone() -> None:
    assert "lipsum" not in _environment(None).globals
    with pytest.raises(Exception, match="lipsum"):
        render("{{ lipsum(n=10**9) }}")


@pytest.mark.parametrize("payload", BLOW_UPS)
def test_work_and_size_are_bounded(payload: str) -> None:
    started = time.monotonic()
    with pytest.raises((SecurityError, OverflowError)):
        render(payload)
    assert time.monotonic() - started < 4.0  # the 2 s render limit, plus slack for a busy machine


def test_deep_recursion_is_a_config_error_at_render(tmp_path: Path) -> None:
    (tmp_path / "en").mkdir()
    (tmp_path / "en" / "subject.txt.j2").write_text("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}")
    with pytest.raises(ConfigError, match=r"en/subject.txt.j2.*recurses"):
        check_templates(tmp_path, languages=("en",))


def test_normal_templates_still_render() -> None:
    out = render(
        "{% for a in ['x', 'y'] %}{{ a|upper }}{{ loop.index }}/{{ loop.length }} {% endfor %}"
        "{{ '%.2f'|format(3.14159) }} {{ 'n' ~ 1 }} {{ 2**10 }} {{ '{:>4}'.format(7) }} "
        "{{ range(3)|join(',') }} {{ 'ab'|replace('a', 'c') }} {{ [1, 2, 3]|batch(2)|list|length }}"
    )
    assert out == "X1/2 Y2/2 3.14 n1 1024    7 0,1,2 cb 2"


def _event(**kw: object) -> AlertEvent:
    c = replace(sample_candidate(now=NOW), **kw)  # type: ignore[arg-type]
    return AlertEvent(candidate=c, event="firing", severity=c.severity, owner=c.owner, rule="web")


def test_html_channels_autoescape_and_text_does_not(tmp_path: Path) -> None:
    (tmp_path / "en").mkdir()
    (tmp_path / "en" / "telegram.html.j2").write_text("<b>{{ first.metric }}</b>")
    (tmp_path / "en" / "text.txt.j2").write_text("{{ first.metric }}")
    out = Renderer(templates_dir=tmp_path).render(
        [_event(metric="<script>alert(1)</script>")], kind="firing", language="en", now=NOW
    )
    assert out.body_html == "<b>&lt;script&gt;alert(1)&lt;/script&gt;</b>"
    assert out.body_text == "<script>alert(1)</script>"


@pytest.mark.parametrize("payload", [ESCAPES[0], ESCAPES[2], BLOW_UPS[0], BLOW_UPS[1], "{{ lipsum() }}"])
def test_a_hostile_override_is_refused_when_the_configuration_loads(tmp_path: Path, payload: str) -> None:
    templates = tmp_path / "templates"
    (templates / "ru").mkdir(parents=True)
    (templates / "ru" / "email.html.j2").write_text(f"<p>{payload}</p>")
    config = tmp_path / "alerting.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "templates_dir": "templates",
                "channels": {"hook": {"type": "webhook", "url": "http://127.0.0.1:9/x"}},
                "rules": [{"name": "all", "channels": ["hook"]}],
            }
        )
    )
    with pytest.raises(ConfigError, match=r"templates_dir: alert template ru/email.html.j2"):
        load_alerting_config(config)


def test_a_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "en").mkdir()
    (tmp_path / "en" / "summary.txt.j2").write_text("ok\n{% if %}\n")
    with pytest.raises(ConfigError, match=r"en/summary.txt.j2.*line 2"):
        check_templates(tmp_path, languages=("en",))


def test_includes_cannot_leave_the_templates_directory(tmp_path: Path) -> None:
    (tmp_path / "en").mkdir()
    (tmp_path / "en" / "text.txt.j2").write_text("{% include '../../../../../etc/passwd' %}")
    with pytest.raises(ConfigError, match="TemplateNotFound"):
        check_templates(tmp_path, languages=("en",))


def test_a_good_override_passes_the_load_check(tmp_path: Path) -> None:
    (tmp_path / "en").mkdir()
    (tmp_path / "en" / "subject.txt.j2").write_text("[{{ severity|upper }}] {{ first.metric }}")
    check_templates(tmp_path)
    out = Renderer(templates_dir=tmp_path).render([_event()], kind="firing", language="en", now=NOW)
    assert out.subject == f"[{sample_candidate(now=NOW).severity.upper()}] web_response_ms"


@pytest.mark.parametrize(
    "template",
    [
        "{labels.__missing__.__globals__}",  # reached our module globals (and os.environ) before
        "{metric.__class__.__mro__}",
        "{metric_q.__class__}",
        "{_private}",
        "{metric:>999999999}",
    ],
)
def test_link_templates_cannot_reach_attributes(template: str) -> None:
    with pytest.raises(ValueError, match="link template"):
        format_link(template, LINK_FIELDS)
    with pytest.raises(ValueError, match="link template"):
        Links(chart=template)


def test_link_templates_still_fill_fields_and_label_keys() -> None:
    fields = {**LINK_FIELDS, "labels": {"host": "h1"}}
    assert format_link("{base_url}/x?h={labels[host]}&m={metric_q}&z={labels[zone]}", fields) == (
        "http://telewatch/x?h=h1&m=m&z="
    )
