"""Rules: which candidates alert, how severe, who owns them, which channels hear, and silences."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from fnmatch import fnmatchcase
from zoneinfo import ZoneInfo

import pandas as pd

from telewatch.alerts.config import Match, QuietHours, Rule
from telewatch.alerts.model import AlertCandidate, Matcher, Silence, severity_rank
from telewatch.alerts.sample import sample_candidate as sample_candidate  # re-exported: its old home
from telewatch.core.errors import ValidationError

_MATCHER = re.compile(r"^\s*([A-Za-z_][\w.-]*)\s*(=~|!~|!=|=)\s*(.*?)\s*$")


def candidate_labels(candidate: AlertCandidate, *, severity: str | None = None) -> dict[str, str]:
    """The labels silences and routes see: the slice plus metric, monitor, severity, group, incident_type."""
    out = dict(candidate.labels)
    out["metric"] = candidate.metric
    out["monitor"] = candidate.monitor
    out["severity"] = severity or candidate.severity
    if candidate.group:
        out["group"] = candidate.group
    if candidate.incident_type:
        out["incident_type"] = candidate.incident_type
    return out


def matches(match: Match, candidate: AlertCandidate) -> bool:
    """Whether ``candidate`` satisfies every field given in ``match`` (shell globs).

    >>> import pandas as pd
    >>> c = sample_candidate(metric="web_latency", labels={"dc": "eu"})
    >>> matches(Match(metrics=["web_*"], labels={"dc": "e*"}), c), matches(Match(metrics=["db_*"]), c)
    (True, False)
    """

    def any_glob(patterns: Sequence[str], value: str | None) -> bool:
        return not patterns or (value is not None and any(fnmatchcase(value, p) for p in patterns))

    if not any_glob(match.monitors, candidate.monitor):
        return False
    if not any_glob(match.metrics, candidate.metric):
        return False
    if not any_glob(match.incident_types, candidate.incident_type):
        return False
    if not any_glob(match.groups, candidate.group):
        return False
    return all(
        key in candidate.labels and fnmatchcase(candidate.labels[key], pattern)
        for key, pattern in match.labels.items()
    )


def find_rule(rules: Sequence[Rule], candidate: AlertCandidate) -> Rule | None:
    """The first rule whose match takes the candidate (rules are read top to bottom)."""
    for rule in rules:
        if matches(rule.match, candidate):
            return rule
    return None


def rule_severity(rule: Rule, candidate: AlertCandidate) -> str | None:
    """Severity from the rule's levels (first satisfied wins); None when the candidate is below all of them.

    A rule without levels keeps the candidate's own severity.
    """
    if not rule.severity:
        return candidate.severity
    deviation = abs(candidate.deviation_pct) if candidate.deviation_pct is not None else None
    for level in rule.severity:
        if candidate.score < level.min_score:
            continue
        if level.min_deviation_pct is not None and (deviation is None or deviation < level.min_deviation_pct):
            continue
        if level.min_duration is not None and candidate.last_seen - candidate.started_at < pd.Timedelta(
            level.min_duration
        ):
            continue
        if level.min_metrics is not None and 1 + len(candidate.related) < level.min_metrics:
            continue
        return level.level
    return None


def rule_owner(rule: Rule, candidate: AlertCandidate) -> str | None:
    """Owner of a slice: the first matching ``owners`` entry, else the metric's own owner, else the rule's."""
    for entry in rule.owners:
        if matches(entry.match, candidate):
            return entry.owner
    return candidate.owner or rule.owner


def rule_channels(rule: Rule, candidate: AlertCandidate) -> list[str]:
    """Channels that hear the candidate: the first matching route's; a route with ``continue: true`` adds
    its channels and goes on to the next routes and, at the end, to the rule's own channels."""
    chosen: list[str] = []
    for route in rule.routes:
        if matches(route.match, candidate):
            chosen.extend(c for c in route.channels if c not in chosen)
            if not route.continue_:
                return chosen
    chosen.extend(c for c in rule.channels if c not in chosen)
    return chosen


def in_quiet_hours(quiet: QuietHours, now: pd.Timestamp) -> pd.Timestamp | None:
    """When quiet hours that contain ``now`` end (UTC), or None when ``now`` is not in quiet hours.

    >>> from datetime import time
    >>> q = QuietHours(start=time(23), end=time(7), timezone="UTC")
    >>> in_quiet_hours(q, pd.Timestamp("2026-01-01 02:00", tz="UTC"))
    Timestamp('2026-01-01 07:00:00+0000', tz='UTC')
    >>> in_quiet_hours(q, pd.Timestamp("2026-01-01 12:00", tz="UTC")) is None
    True
    """
    zone = ZoneInfo(quiet.timezone)
    local = now.tz_convert(zone).to_pydatetime()
    day = local.date()
    for offset in (-1, 0):  # a window that started yesterday evening, or today
        start_day = day + timedelta(days=offset)
        start = datetime.combine(start_day, quiet.start, tzinfo=zone)
        end_day = start_day + timedelta(days=1) if quiet.end <= quiet.start else start_day
        end = datetime.combine(end_day, quiet.end, tzinfo=zone)
        if start <= local < end:
            return pd.Timestamp(end).tz_convert("UTC")
    return None


# -- silences -----------------------------------------------------------------------------------
def parse_matcher(text: str) -> Matcher:
    """``name=value``, ``name!=value``, ``name=~regex`` or ``name!~regex``.

    >>> parse_matcher("host=~app-.*")
    Matcher(name='host', op='=~', value='app-.*')
    """
    found = _MATCHER.match(text)
    if not found:
        raise ValidationError(f"matcher {text!r} is not NAME=VALUE, NAME!=VALUE, NAME=~REGEX or NAME!~REGEX")
    name, op, value = found.groups()
    if op in {"=~", "!~"}:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValidationError(f"matcher {text!r}: bad regular expression: {exc}") from exc
    return Matcher(name=name, op=op, value=value)


def matcher_from_dict(data: Mapping[str, object]) -> Matcher:
    try:
        name, op, value = str(data["name"]), str(data.get("op", "=")), str(data["value"])
    except KeyError as exc:
        raise ValidationError(f"a matcher needs 'name' and 'value' (missing {exc.args[0]!r})") from None
    return parse_matcher(f"{name}{op}{value}")


def matcher_matches(matcher: Matcher, labels: Mapping[str, str]) -> bool:
    value = labels.get(matcher.name, "")
    if matcher.op == "=":
        return value == matcher.value
    if matcher.op == "!=":
        return value != matcher.value
    hit = re.fullmatch(matcher.value, value) is not None
    return hit if matcher.op == "=~" else not hit


def silence_for(silences: Iterable[Silence], labels: Mapping[str, str], now: pd.Timestamp) -> Silence | None:
    """The first active silence all of whose matchers match ``labels``."""
    for silence in silences:
        if silence.active(now) and all(matcher_matches(m, labels) for m in silence.matchers):
            return silence
    return None


def more_severe(a: str, b: str | None) -> bool:
    return b is None or severity_rank(a) > severity_rank(b)
