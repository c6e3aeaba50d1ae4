"""Messages and charts: the default templates carry what a person needs; overrides and limits hold."""

from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from telewatch.alerts.chart import render_chart
from telewatch.alerts.config import DashboardLink, Links
from telewatch.alerts.render import TELEGRAM_TEXT_LIMIT, AlertEvent, Renderer, deviation_floor
from telewatch.alerts.rules import sample_candidate

NOW = pd.Timestamp("2026-11-23 12:00", tz="UTC")


def event(**kw: object) -> AlertEvent:
    c = replace(sample_candidate(now=NOW), **kw)  # type: ignore[arg-type]
    return AlertEvent(candidate=c, event="firing", severity=c.severity, owner=c.owner, rule="web")


def links() -> Links:
    return Links(
        base_url="https://tw.example.com",  # type: ignore[arg-type]
        dashboards=[
            DashboardLink(title="Grafana", url="https://grafana.example.com/d/x?var-dc={labels[dc]}")
        ],
    )


@pytest.mark.parametrize(
    ("language", "words"),
    [
        (
            "en",
            [
                "Metric <b>web_response_ms</b> in slice <code>dc=eu-west, service=checkout</code>",
                "Deviation more than <b>130%</b> above expected",
                "expected 220.0 (band 195.0 – 245.0)",
                "Started: 2026-11-23 11:43 UTC",
                "Related: web_error_rate, db_query_ms",
                "Owner: @web-oncall",
                "Incident #42: latency degradation",
            ],
        ),
        (
            "ru",
            [
                "Метрика <b>web_response_ms</b> в разрезе <code>dc=eu-west, service=checkout</code>",
                "Отклонение более <b>130%</b> выше ожидаемого",
                "ожидалось 220,0 (диапазон 195,0 – 245,0)",  # a decimal comma in Russian
                "Началось: 2026-11-23 11:43 UTC",
                "Связанные метрики: web_error_rate, db_query_ms",
                "Ответственный: @web-oncall",
                "Инцидент #42",
            ],
        ),
    ],
)
def test_default_message_carries_everything(language: str, words: list[str]) -> None:
    out = Renderer(links=links()).render(
        [event()], kind="firing", language=language, now=NOW, chart_cid="chart"
    )
    for word in words:
        assert word in out.body_html, word
    assert '<a href="https://tw.example.com/incidents/42">' in out.body_html
    assert (
        'href="https://tw.example.com/explore?metric=web_response_ms&amp;labels=dc%3Deu-west%2Cservice%3Dcheckout'
        in out.body_html
    )
    assert 'href="https://grafana.example.com/d/x?var-dc=eu-west"' in out.body_html
    assert '<img src="cid:chart"' in out.body_email
    assert "<b>web_response_ms</b>" in out.body_email
    assert "<" not in out.body_text.replace("<-", "")  # plain text has no markup
    assert "web_response_ms" in out.subject
    assert "@web-oncall" in out.summary
    assert out.payload["alerts"][0]["deviation_more_than"] == "130"


def test_metric_names_are_escaped_in_html() -> None:
    out = Renderer().render([event(metric="a<b>&c")], kind="firing", language="en", now=NOW)
    assert "a&lt;b&gt;&amp;c" in out.body_html
    assert "a<b>&c" in out.body_text


def test_a_big_incident_stays_within_telegram_limits() -> None:
    events = [event(metric=f"metric_{i:03d}_" + "x" * 80, key=f"k{i}") for i in range(60)]
    out = Renderer().render(events, kind="firing", language="en", now=NOW)
    assert len(out.body_html) <= TELEGRAM_TEXT_LIMIT
    assert "more" in out.body_html
    assert len(out.payload["alerts"]) == 60  # webhooks still get every alert


def test_templates_can_be_overridden_one_file_at_a_time(tmp_path: Path) -> None:
    (tmp_path / "en").mkdir()
    (tmp_path / "en" / "subject.txt.j2").write_text(
        "ALERT {{ first.metric }} owner={{ owners|join(',') }}", encoding="utf-8"
    )
    out = Renderer(templates_dir=tmp_path).render([event()], kind="firing", language="en", now=NOW)
    assert out.subject == "ALERT web_response_ms owner=@web-oncall"
    assert "Deviation more than" in out.body_html  # the other templates are still the defaults


def test_resolved_message() -> None:
    e = AlertEvent(
        candidate=replace(  # the latest value back at the expected one
            sample_candidate(now=NOW), status="resolved", value=sample_candidate(now=NOW).expected
        ),
        event="resolved",
        severity="critical",
        owner=None,
    )
    out = Renderer().render([e], kind="resolved", language="en", now=NOW + pd.Timedelta(minutes=20))
    assert out.subject.startswith("[RESOLVED]")
    # the true duration: first to last anomalous minute (17 min before NOW to NOW), not until the message
    assert "Back to normal after 18 min" in out.body_html
    assert out.payload["status"] == "resolved"


@pytest.mark.parametrize(
    ("language", "value", "text"),
    [
        (
            "en",
            8336.0,
            "No longer flagged after 18 min, but still above the usual band: last value <b>8,336</b>",
        ),
        ("en", 5100.0, "Back to normal after 18 min"),
        ("ru", 2000.0, "но всё ещё ниже обычного: последнее значение <b>2 000</b>, обычно 4 017 – 5 854"),
    ],
)
def test_a_resolved_message_does_not_call_a_value_outside_the_usual_band_normal(
    language: str, value: float, text: str
) -> None:
    """A surge the detector let go of while traffic is still well above the usual band (the detector
    adapted to a slow return) is "no longer flagged", not "back to normal"."""
    c = replace(
        sample_candidate(now=NOW), status="resolved", value=value, expected=4701.0, lower=4017.0, upper=5854.0
    )
    e = AlertEvent(candidate=c, event="resolved", severity="critical", owner=None)
    out = Renderer().render([e], kind="resolved", language=language, now=NOW + pd.Timedelta(minutes=20))
    body = out.body_html.replace("\u00a0", " ").replace("\u202f", " ")  # Russian digit groups
    assert text in body, body
    assert out.payload["alerts"][0]["still_outside"] == (
        None if value == 5100.0 else "above" if value > 5854.0 else "below"
    )


@pytest.mark.parametrize(
    ("language", "moved", "value", "text", "side"),
    [
        # traffic catching up after an outage: over, and now above the band it had fallen below
        (
            "en",
            "down",
            7569.0,
            "Over after 18 min, and now above the usual band (it was below): last value <b>7,569</b>",
            "above",
        ),
        # an error share below its usual after a burst
        (
            "ru",
            "up",
            2000.0,
            "Закончилась через 18 мин, и теперь ниже обычного (была выше): последнее",
            "below",
        ),
        # the same side as the anomaly: "still"
        ("en", "up", 8336.0, "but still above the usual band", None),
    ],
)
def test_a_resolved_message_past_the_other_edge_of_the_band_says_so_not_still(
    language: str, moved: str, value: float, text: str, side: str | None
) -> None:
    """A value outside the usual band on the other side than the anomaly went is not "still" outside:
    after a throughput drop, the catch-up above the band is told as such."""
    c = replace(
        sample_candidate(now=NOW),
        status="resolved",
        value=value,
        expected=4701.0,
        lower=4017.0,
        upper=5854.0,
        moved=moved,
    )
    e = AlertEvent(candidate=c, event="resolved", severity="critical", owner=None)
    out = Renderer().render([e], kind="resolved", language=language, now=NOW + pd.Timedelta(minutes=20))
    body = out.body_html.replace("\u00a0", " ").replace("\u202f", " ")
    assert text in body, body
    assert "still" not in body or side is None
    payload = out.payload["alerts"][0]
    assert payload["now_outside"] == side
    assert payload["still_outside"] == (None if side else "above")
    # the plain text and the email say the same
    plain = out.body_text.replace("\u00a0", " ").replace("\u202f", " ")
    email = out.body_email.replace("\u00a0", " ").replace("\u202f", " ")
    assert text.replace("<b>", "").replace("</b>", "") in plain, plain
    assert "it was below" in email or "была выше" in email or "still above" in email, email


@pytest.mark.parametrize(
    ("pct", "text"),
    [
        (143.7, "140"),
        (-37.2, "35"),
        (7.9, "7"),
        (2500.0, "2,500"),
        (-0.95, "0.9"),
        (0.004, None),
        (None, None),
    ],
)
def test_deviation_floor(pct: float | None, text: str | None) -> None:
    # under 1 % a decimal stays: an APDEX 0.95 % below its usual value is not "more than 0 %"
    assert deviation_floor(pct) == text


def test_russian_messages_write_numbers_the_russian_way() -> None:
    from telewatch.alerts.render import format_number

    assert format_number(4806.2, "ru") == "4\u00a0806"
    assert format_number(0.01234, "ru") == "0,01234"
    assert deviation_floor(2500.0, "ru") == "2\u00a0500"
    assert deviation_floor(-0.95, "ru") == "0,9"


def test_chart_marks_the_anomaly_and_band() -> None:
    from PIL import Image

    png = render_chart(sample_candidate(now=NOW), hours=6)
    assert png is not None
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    image = Image.open(io.BytesIO(png)).convert("RGB")
    assert image.size == (900, 340)
    colors = image.getcolors(maxcolors=1_000_000) or []
    # the band (light blue) and the anomaly span (orange tint) are both drawn
    assert any(abs(r - 0xC0) < 40 and abs(g - 0xDB) < 30 and b > 0xE0 for _, (r, g, b) in colors)
    assert any(r > 0xF0 and 0xC0 < g < 0xE8 and b < 0xD5 for _, (r, g, b) in colors)
    assert render_chart(replace(sample_candidate(now=NOW), series=None)) is None


@pytest.mark.parametrize(
    ("language", "title"),
    [("en", None), ("ru", "web_response_ms{service=payments, region=eu-west-1, host=api-17}")],
)
def test_the_legend_stands_above_the_plot_not_over_the_line(language: str, title: str | None) -> None:
    """A metric near the top of its range (an APDEX at 0.999) ran under a legend drawn inside the
    plot; it stands above the plot now, right of the title, in two rows beside a long one."""
    from PIL import Image

    png = render_chart(sample_candidate(now=NOW), hours=6, title=title, language=language)
    assert png is not None
    image = Image.open(io.BytesIO(png)).convert("RGB")
    top = image.crop((0, 0, image.size[0], int(image.size[1] * 0.1)))  # above the plot (its top: 0.9)
    colors = top.getcolors(maxcolors=1_000_000) or []
    # the legend's swatches of the band (light blue) and of the anomaly span (orange tint) are up there
    assert any(abs(r - 0xC0) < 40 and abs(g - 0xDB) < 30 and b > 0xE0 for _, (r, g, b) in colors)
    assert any(r > 0xF0 and 0xC0 < g < 0xE8 and b < 0xD5 for _, (r, g, b) in colors)


@pytest.mark.parametrize(
    ("language", "said"),
    [("en", "Deviation more than <b>3 pp</b> above expected"), ("ru", "Отклонение более <b>3 п.п.</b> выше")],
)
def test_a_share_deviates_in_percentage_points(language: str, said: str) -> None:
    """An error share from 0.03 % to 3.4 %: "3 percentage points above", not "11,000 % above"."""
    e = event(
        metric="error",
        value=0.034,
        expected=0.0003,
        lower=0.0001,
        upper=0.0009,
        deviation_pct=3.37,
        deviation_points=True,
    )
    out = Renderer(links=links()).render([e], kind="firing", language=language, now=NOW)
    assert said in out.body_html, out.body_html
    assert "11" not in out.subject.split("error")[-1]  # no relative figure anywhere near the metric
    assert out.payload["alerts"][0]["deviation_points"] is True
    assert out.payload["alerts"][0]["deviation_pct"] == pytest.approx(3.37)


def test_a_shipped_incident_type_is_named_in_the_message_language() -> None:
    e = event(incident_type="Traffic surge")
    ru = Renderer(links=links()).render([e], kind="firing", language="ru", now=NOW)
    en = Renderer(links=links()).render([e], kind="firing", language="en", now=NOW)
    assert "Всплеск трафика" in ru.body_text
    assert "Traffic surge" not in ru.body_text
    assert "Traffic surge" in en.body_text


@pytest.mark.parametrize("language", ["en", "ru"])
def test_an_incident_counts_metrics_not_alerts(language: str) -> None:
    """Two bursts of one metric in one incident are one metric: the subject names it; two metrics are
    counted as two."""
    same = [event(key="k1"), event(key="k2", score=7.0)]
    out = Renderer().render(same, kind="resolved", language=language, now=NOW)
    assert "web_response_ms" in out.subject
    assert "2" not in out.subject.split("]", 1)[1].replace("web_response_ms", "")
    two = [event(key="k1"), event(key="k2", metric="web_error_rate")]
    out = Renderer().render(two, kind="firing", language=language, now=NOW)
    assert ("2 metrics" if language == "en" else "метрик — 2") in out.subject
    assert ("2 metrics" if language == "en" else "метрик — 2") in out.body_text


@pytest.mark.parametrize(
    ("language", "said"),
    [("en", "escalated from warning"), ("ru", "повышено, было: ВНИМАНИЕ")],
)
def test_an_escalation_says_what_it_was_raised_from(language: str, said: str) -> None:
    """A warning that lasted (``alert.critical_after``) comes back as a critical update: the message
    says it was raised, in every format; a plain update (a metric joining the incident) does not."""
    c = sample_candidate(now=NOW)
    up = AlertEvent(candidate=c, event="update", severity="critical", owner=c.owner, was="warning")
    out = Renderer().render([up], kind="update", language=language, now=NOW)
    for text in (out.body_text, out.body_html, out.body_email):
        assert said in text
    plain = Renderer().render([replace(up, was=None)], kind="update", language=language, now=NOW)
    assert said not in plain.body_text
    assert ("updated" if language == "en" else "обновление") in plain.body_text


@pytest.mark.parametrize(
    ("language", "said"),
    [
        ("en", "2026-11-23 11:43 UTC, back to normal after 6 min"),
        ("ru", "2026-11-23 11:43 UTC, в норме через 6 мин"),
    ],
)
def test_a_one_line_summary_of_what_was_over_says_when_and_for_how_long(language: str, said: str) -> None:
    """The one line a digest lists (and a photo caption carries): for an alert already over when
    told, when it started and how long it lasted; for one going on, neither."""
    over = event(recovered=True, last_seen=pd.Timestamp("2026-11-23 11:48", tz="UTC"))
    out = Renderer().render([over], kind="firing", language=language, now=NOW)
    assert said in out.summary, out.summary
    ongoing = Renderer().render([event()], kind="firing", language=language, now=NOW)
    assert "11:43" not in ongoing.summary


@pytest.mark.parametrize(("language", "said"), [("en", "score 8.6"), ("ru", "оценка 8,6")])
def test_the_score_is_written_to_one_decimal_as_the_language_writes_numbers(language: str, said: str) -> None:
    """ "score 8.562" gave three decimals nobody compares, and in Russian a decimal point beside
    values written with a comma; the webhook's JSON keeps the number."""
    out = Renderer(links=links()).render([event(score=8.5617)], kind="firing", language=language, now=NOW)
    for body in (out.body_text, out.body_html, out.body_email):
        assert said in body.replace("<b>", "").replace("</b>", "").replace(
            "Score</td><td>", "score "
        ).replace("Оценка</td><td>", "оценка "), body
    assert "8.562" not in out.body_text
    assert "8,562" not in out.body_text
    assert out.payload["alerts"][0]["score"] == pytest.approx(8.562)


@pytest.mark.parametrize(
    ("language", "said"),
    [
        ("en", "Data: no readings 11:31–11:42 (12 min); the same reading, 504.1, 11:43–11:56 (14 readings)"),
        (
            "ru",
            "Данные: нет показаний 11:31–11:42 (12 мин); одно и то же значение 504,1 11:43–11:56 (14 показаний)",
        ),
    ],
)
def test_a_message_says_what_the_collection_did_around_the_anomaly(language: str, said: str) -> None:
    """A "collection gap" incident's alert names the gap and the stale readings after it; the JSON
    lists them; an alert without data-quality issues has no such line."""
    from telewatch.incidents.data_quality import DataQualityIssue

    t = pd.Timestamp("2026-11-23 11:31", tz="UTC")
    issues = (
        DataQualityIssue("collection_gap", t, t + pd.Timedelta(minutes=11), 12),
        DataQualityIssue(
            "stuck_value", t + pd.Timedelta(minutes=12), t + pd.Timedelta(minutes=25), 14, 504.06668
        ),
    )
    out = Renderer(links=links()).render(
        [event(data_quality=issues)], kind="firing", language=language, now=NOW
    )
    assert said in out.body_text, out.body_text
    assert said.split(": ", 1)[1] in out.body_html
    assert said.split(": ", 1)[1] in out.body_email
    listed = out.payload["alerts"][0]["data_quality"]
    assert [(d["kind"], d["points"]) for d in listed] == [("collection_gap", 12), ("stuck_value", 14)]
    assert listed[0]["value"] is None
    plain = Renderer(links=links()).render([event()], kind="firing", language=language, now=NOW)
    assert said.split(": ", 1)[0] + ":" not in plain.body_text
    assert plain.payload["alerts"][0]["data_quality"] == []
