"""Incident types: an editable YAML rule set naming the kind of trouble from the metrics and directions.

A rule file looks like this (the shipped one is ``telewatch/data/incident_types.yaml``)::

    types:
      - name: backend_outage
        title: Backend outage
        all:                       # every condition must match a metric of the incident
          - {metric: throughput_rpm, direction: down}
          - {metric: error_rate, direction: up}
        any:                       # optional: at least ``min_any`` (default 1) of these
          - {metric: web_response_ms, direction: up}
        none:                      # optional: none of these may match
          - {metric: cpu_percent, direction: up}

``metric`` is a glob over metric names (``*_percent``), ``direction`` is ``up``, ``down`` or ``any``
(either of those), or one of the data-quality kinds ``gap`` (collection gap), ``stuck`` (stuck value)
and ``reset`` (counter reset) that :func:`quality_changes` reports from
:func:`telewatch.incidents.data_quality.find_data_quality` — so an incident the collection caused is
typed as such, not as a latency degradation;
``group`` (glob over the metric's group) may stand in for or narrow ``metric``. A type must
explain at least one of the incident's anomalous metrics (the others only moved with it). Among the
rules that match, the one whose ``all`` conditions explain most anomalous metrics wins, then the one
whose conditions explain most of them, then the one with the most matched conditions, then the
higher ``priority``, then the earlier in the file.

>>> rules = load_rules()
>>> classify(rules, [MetricChange("error_rate", "up"), MetricChange("apdex", "down")]).name
'error_burst'
>>> classify(rules, [MetricChange("memory_percent", "flat")]) is None
True
>>> classify(rules, [MetricChange("web_response_ms", "stuck"), MetricChange("apdex", "down")]).name
'stuck_value'
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from fnmatch import fnmatchcase, translate
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Literal

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic import ValidationError as PydanticError

from telewatch.core.errors import ConfigError
from telewatch.incidents.data_quality import (
    QUALITY_DIRECTIONS,
    DataQualityIssue,
    _find,
    _ns,
    issues_between,
)

__all__ = [
    "DEFAULT_RULES_ENV",
    "QUALITY_AFTER",
    "QUALITY_BEFORE",
    "Condition",
    "IncidentType",
    "MetricChange",
    "RuleSet",
    "classify",
    "explained",
    "involvement_cut",
    "load_rules",
    "metric_quality_changes",
    "metric_quality_issues",
    "quality_changes",
    "title_in",
    "with_quality",
]

#: The directions of a data-quality change (see :mod:`telewatch.incidents.data_quality`); a condition
#: with direction ``any`` does not match them — a collection gap is not a move up or down.
QUALITY_CHANGE_DIRECTIONS = frozenset(QUALITY_DIRECTIONS.values())
Direction = Literal["up", "down", "flat", "gap", "stuck", "reset"]

DEFAULT_RULES_ENV = "TELEWATCH_INCIDENT_TYPES"
"""Environment variable naming a rule file to use instead of the shipped one."""


class Condition(BaseModel):
    model_config = ConfigDict(extra="forbid")

    metric: str | None = Field(default=None, description="Glob over metric names.")
    group: str | None = Field(default=None, description="Glob over metric groups.")
    direction: Literal["up", "down", "any", "gap", "stuck", "reset"] = "any"

    @model_validator(mode="after")
    def _needs_target(self) -> Condition:
        if self.metric is None and self.group is None:
            raise ValueError("a condition needs a metric or a group")
        return self

    def matches(self, change: MetricChange) -> bool:
        if change.direction == "flat":
            return False
        if self.direction == "any" and change.direction in QUALITY_CHANGE_DIRECTIONS:
            return False
        if self.direction != "any" and change.direction != self.direction:
            return False
        if self.metric is not None and not fnmatchcase(change.metric, self.metric):
            return False
        return not (self.group is not None and not fnmatchcase(change.group or "", self.group))


class IncidentType(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9_\-]+$")
    title: str
    #: the title in other languages (``{ru: ...}``): alerts and the UI in that language show it
    titles: dict[str, str] = Field(default_factory=dict)
    description: str = ""
    priority: int = 0
    all: list[Condition] = Field(default_factory=list)
    any: list[Condition] = Field(default_factory=list)
    min_any: int = Field(default=1, ge=0)
    none: list[Condition] = Field(default_factory=list)

    @model_validator(mode="after")
    def _not_empty(self) -> IncidentType:
        if not self.all and not self.any:
            raise ValueError(f"type {self.name!r} needs 'all' or 'any' conditions")
        return self

    def match_count(self, changes: Sequence[MetricChange] | _ChangeIndex) -> int | None:
        """How many conditions matched, or None when the rule does not apply."""
        index = changes if isinstance(changes, _ChangeIndex) else _ChangeIndex(changes)
        for cond in self.all:
            if not index.matches(cond):
                return None
        hits_any = sum(1 for cond in self.any if index.matches(cond))
        if self.any and hits_any < min(self.min_any, len(self.any)):
            return None
        for cond in self.none:
            if index.matches(cond):
                return None
        return len(self.all) + hits_any


class RuleSet(BaseModel):
    model_config = ConfigDict(extra="forbid")

    types: list[IncidentType]
    source: str = ""

    @model_validator(mode="after")
    def _unique(self) -> RuleSet:
        names = [t.name for t in self.types]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate type names: {', '.join(dupes)}")
        return self

    def get(self, name: str) -> IncidentType | None:
        return next((t for t in self.types if t.name == name), None)


@dataclass(frozen=True, slots=True)
class MetricChange:
    """A metric involved in an incident and the way it moved."""

    metric: str
    direction: Direction
    group: str | None = None
    #: the metric has an anomaly in the incident (not only moved with it in the scan): a type must
    #: explain at least one such metric
    anomalous: bool = False


class _ChangeIndex:
    """The changes of an incident, indexed for :meth:`Condition.matches` over all of them at once.

    An incident can involve thousands of metrics and a rule set has dozens of conditions: the changes
    are deduplicated per direction into metric names, groups and (metric, group) pairs, each
    condition's globs are compiled once, and the answer per (metric glob, group glob, direction) is
    remembered — the same as ``any(cond.matches(c) for c in changes)``.

    >>> index = _ChangeIndex([MetricChange("error_rate", "up", "web"), MetricChange("cpu", "flat")])
    >>> index.matches(Condition(metric="error*", group="w*")), index.matches(Condition(metric="cpu"))
    (True, False)
    """

    def __init__(self, changes: Sequence[MetricChange]) -> None:
        self._by_direction: dict[str, list[MetricChange]] = {}
        for c in changes:
            if c.direction != "flat":  # a flat metric matches no condition
                self._by_direction.setdefault(c.direction, []).append(c)
        # per direction, built when a condition needs them (few new objects: a tick's typing can
        # see 10,000 changes, and every object counts towards the next garbage collection)
        self._names: dict[str, set[str]] = {}
        self._groups: dict[str, set[str]] = {}
        self._pairs: dict[str, set[tuple[str, str]]] = {}
        self._seen: dict[tuple[str | None, str | None, str], bool] = {}

    def matches(self, cond: Condition) -> bool:
        """Whether ``cond`` matches at least one of the changes."""
        key = (cond.metric, cond.group, cond.direction)
        hit = self._seen.get(key)
        if hit is None:
            hit = self._seen[key] = self._match(cond)
        return hit

    def _match(self, cond: Condition) -> bool:
        dirs = (
            [d for d in self._by_direction if d not in QUALITY_CHANGE_DIRECTIONS]
            if cond.direction == "any"
            else [cond.direction]
        )
        metric_rx = _glob(cond.metric) if cond.metric is not None else None
        group_rx = _glob(cond.group) if cond.group is not None else None
        for d in dirs:
            seen = self._by_direction.get(d)
            if not seen:
                continue
            if metric_rx is not None and group_rx is not None:
                if d not in self._pairs:
                    self._pairs[d] = {(c.metric, c.group or "") for c in seen}
                if any(metric_rx(m) and group_rx(g) for m, g in self._pairs[d]):
                    return True
            elif metric_rx is not None:
                if d not in self._names:
                    self._names[d] = {c.metric for c in seen}
                if any(map(metric_rx, self._names[d])):
                    return True
            elif group_rx is not None:
                if d not in self._groups:
                    self._groups[d] = {c.group or "" for c in seen}
                if any(map(group_rx, self._groups[d])):
                    return True
        return False


def _glob(pattern: str) -> Callable[[str], re.Match[str] | None]:
    """The matcher :func:`fnmatch.fnmatchcase` uses for ``pattern`` (case-sensitive, whole string)."""
    return re.compile(translate(pattern)).match


def load_rules(path: Path | str | None = None) -> RuleSet:
    """Load a rule set: ``path``, else ``$TELEWATCH_INCIDENT_TYPES``, else the shipped default.

    The file is read on every call, and parsed only when its text is new: a scheduler tick that
    types incidents loads the rules each time (the parse costs ~10 ms). The rule set returned for
    a text already seen is the same object: treat it as read-only.
    """
    chosen = path if path is not None else os.environ.get(DEFAULT_RULES_ENV) or None
    if chosen is None:
        text = resources.files("telewatch.data").joinpath("incident_types.yaml").read_text(encoding="utf-8")
        source = "builtin:incident_types.yaml"
    else:
        p = Path(chosen)
        if not p.is_file():
            raise ConfigError(f"incident types: no rule file at {p}")
        text = p.read_text(encoding="utf-8")
        source = str(p)
    return _parse_rules(text, source)


@lru_cache(maxsize=16)
def _parse_rules(text: str, source: str) -> RuleSet:
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"incident types {source}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict) or "types" not in raw:
        raise ConfigError(f"incident types {source}: expected a mapping with a 'types' list")
    try:
        return RuleSet.model_validate({**raw, "source": source})
    except PydanticError as exc:
        where = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors(include_url=False)
        )
        raise ConfigError(f"incident types {source}: {where}") from exc


def title_in(title: str | None, language: str, rules: RuleSet | None = None) -> str | None:
    """An incident type's title (or name) as ``language`` says it, from the rule's ``titles``; the
    text itself when no rule has it or the rule has no title in that language.

    >>> title_in("Traffic surge", "ru"), title_in("traffic_surge", "ru"), title_in("Traffic surge", "en")
    ('Всплеск трафика', 'Всплеск трафика', 'Traffic surge')
    >>> title_in("My own type", "ru"), title_in(None, "ru")
    ('My own type', None)
    """
    if title is None:
        return None
    try:
        chosen = rules if rules is not None else load_rules()
    except ConfigError:
        return title
    for rule in chosen.types:
        if title in (rule.title, rule.name):
            return rule.titles.get(language, rule.title if title == rule.name else title)
    return title


def involvement_cut(top_score: float) -> float:
    """The scan score from which a metric counts as moving with an incident: ``max(3, 0.6 sqrt(top))``.

    The square root keeps the companions of one extreme metric (an error rate up 200-fold) in, where
    a fixed share of the top score would drop them.

    >>> involvement_cut(400.0), involvement_cut(4.0)
    (12.0, 3.0)
    """
    return max(3.0, 0.6 * float(top_score) ** 0.5)


def quality_changes(
    metric: str,
    issues: Sequence[DataQualityIssue],
    start: object,
    end: object,
    *,
    group: str | None = None,
    slack: object = None,
) -> list[MetricChange]:
    """The data-quality changes of one metric during an incident ``[start, end]`` (± ``slack``, a
    Timedelta): one :class:`MetricChange` per kind of issue overlapping it (direction ``gap``,
    ``stuck`` or ``reset``). Add them to the incident's changes before :func:`classify`, in place of
    that metric's up/down change when the metric's anomaly is the issue itself.

    >>> import pandas as pd
    >>> from telewatch.incidents.data_quality import DataQualityIssue
    >>> t = pd.Timestamp("2024-01-01 10:00", tz="UTC")
    >>> gap = DataQualityIssue("collection_gap", t, t + pd.Timedelta(minutes=9), 10)
    >>> quality_changes("web_response_ms", [gap], t - pd.Timedelta(minutes=5), t + pd.Timedelta(hours=1))
    [MetricChange(metric='web_response_ms', direction='gap', group=None, anomalous=False)]
    """
    import pandas as pd

    pad = pd.Timedelta(slack) if slack is not None else None  # type: ignore[arg-type]
    found = issues_between(list(issues), pd.Timestamp(start), pd.Timestamp(end), slack=pad)  # type: ignore[arg-type]
    kinds = sorted({i.kind for i in found}, key=list(QUALITY_DIRECTIONS).index)
    return [MetricChange(metric, QUALITY_DIRECTIONS[k], group) for k in kinds]  # type: ignore[arg-type]


#: How far around an incident a metric's data-quality issue still counts as the incident's cause (a
#: gap just before the values that were flagged when points came back).
QUALITY_SLACK_MINUTES = 10
#: The stretch of a metric's points its data-quality issues are read from, around an anomaly or an
#: incident: a day before it (so a stuck run is judged against how often the metric repeats itself)
#: to a quarter of an hour after it. Incident typing and alert messages read the same stretch, so a
#: message names the issues its incident was typed by.
QUALITY_BEFORE = timedelta(days=1)
QUALITY_AFTER = timedelta(minutes=15)


def metric_quality_issues(series: object, start: object, end: object) -> list[DataQualityIssue]:
    """The data-quality issues of one metric's ``series`` that overlap ``[start, end]`` (±
    :data:`QUALITY_SLACK_MINUTES`): the ones :func:`metric_quality_changes` types an incident by,
    which an alert about the metric names (a gap counts when it is longer than any in the history
    before it: :func:`unusual_gap_steps`).

    >>> import numpy as np, pandas as pd
    >>> idx = pd.date_range("2024-01-01", periods=600, freq="1min", tz="UTC")
    >>> s = pd.Series(np.random.default_rng(1).normal(100, 9, 600).round(1), index=idx)
    >>> [(i.kind, i.points) for i in metric_quality_issues(s.drop(idx[400:420]), idx[420], idx[430])]
    [('collection_gap', 20)]
    """
    import pandas as pd

    values = series if isinstance(series, pd.Series) else pd.Series(series)
    slack = pd.Timedelta(minutes=QUALITY_SLACK_MINUTES)
    # one pass over the index (int64 ns) and values for both the history's gaps and the issues: the
    # tick types up to 20 metrics of a day each (issue 18, "Speed stays")
    index = values.index if isinstance(values.index, pd.DatetimeIndex) else pd.DatetimeIndex(values.index)
    ns = _ns(index)
    step = int(np.median(np.diff(ns))) if ns.size >= 2 else 0  # sampling_step, in ns
    gap_steps = _unusual_gap_steps(index, ns, pd.Timestamp(start) - slack, step)  # type: ignore[arg-type]
    issues = (
        _find(index, ns, values.to_numpy(dtype="float64"), gap_steps, step_ns=step) if ns.size >= 2 else []
    )
    return issues_between(issues, pd.Timestamp(start), pd.Timestamp(end), slack=slack)  # type: ignore[arg-type]


def metric_quality_changes(
    metric: str, series: object, start: object, end: object, *, group: str | None = None
) -> list[MetricChange]:
    """The data-quality changes (:func:`quality_changes`) of one metric during an incident ``[start,
    end]``, from its ``series`` (a pandas Series around the incident, with some history before it so
    that a stuck run is judged against how often the metric repeats itself).

    >>> import numpy as np, pandas as pd
    >>> idx = pd.date_range("2024-01-01", periods=600, freq="1min", tz="UTC")
    >>> s = pd.Series(np.random.default_rng(1).normal(100, 9, 600).round(1), index=idx)
    >>> s = s.drop(idx[400:420])            # 20 minutes without points
    >>> metric_quality_changes("web_response_ms", s, idx[420], idx[430])
    [MetricChange(metric='web_response_ms', direction='gap', group=None, anomalous=False)]
    """
    import pandas as pd

    issues = metric_quality_issues(series, start, end)  # already within the slack
    return quality_changes(
        metric, issues, start, end, group=group, slack=pd.Timedelta(minutes=QUALITY_SLACK_MINUTES)
    )


#: The shortest gap (missing steps) that can type an incident, however gappy the metric's history.
MIN_TYPING_GAP = 5


def unusual_gap_steps(series: object, before: object) -> int:
    """How many steps a gap must miss to be news for this metric: more than any gap in its history
    before ``before``, and at least :data:`MIN_TYPING_GAP`. A metric written only when something
    happens (an error share with a third of its minutes missing) has gaps all day: a four-minute one
    during an error burst is not a collection gap.

    >>> import numpy as np, pandas as pd
    >>> idx = pd.date_range("2024-01-01", periods=600, freq="1min", tz="UTC")
    >>> s = pd.Series(1.0, index=idx)
    >>> unusual_gap_steps(s, idx[500])
    5
    >>> unusual_gap_steps(s.drop(idx[100:112]), idx[500])  # a 12-minute gap earlier: 13 needed
    13
    """
    import pandas as pd

    values = series if isinstance(series, pd.Series) else pd.Series(series)
    index = values.index if isinstance(values.index, pd.DatetimeIndex) else pd.DatetimeIndex(values.index)
    return _unusual_gap_steps(index, _ns(index), before)


def _unusual_gap_steps(index: object, ns: np.ndarray, before: object, step: int | None = None) -> int:
    """:func:`unusual_gap_steps` on a DatetimeIndex and its int64 ns timestamps (``step``: their
    sampling step in ns, if known)."""
    import pandas as pd

    cut = pd.Timestamp(before)  # type: ignore[arg-type]
    if (cut.tzinfo is None) != (getattr(index, "tz", None) is None):
        raise TypeError(  # as pandas' comparison of the index with the bound raised
            f"cannot compare a {'tz-aware' if cut.tzinfo else 'naive'} bound ({cut}) with the series' "
            f"{'naive' if cut.tzinfo else 'tz-aware'} timestamps"
        )
    if ns.size < 2:
        return MIN_TYPING_GAP
    if step is None:
        step = int(np.median(np.diff(ns)))
    history = ns[ns < cut.value]
    if step <= 0 or history.size < 2:
        return MIN_TYPING_GAP
    missing = np.diff(history) // step - 1
    return max(MIN_TYPING_GAP, int(missing.max()) + 1)


def with_quality(changes: Sequence[MetricChange], quality: Sequence[MetricChange]) -> list[MetricChange]:
    """The incident's ``changes`` with each metric that has a data-quality change (``quality``) moved
    by that instead: its up/down came from the broken collection (a gap, the same value repeated),
    not from the system. Other metrics keep their moves; a metric flagged ``anomalous`` stays so.

    >>> up = [MetricChange("web_response_ms", "up", anomalous=True), MetricChange("apdex", "down")]
    >>> with_quality(up, [MetricChange("web_response_ms", "gap")])  # doctest: +NORMALIZE_WHITESPACE
    [MetricChange(metric='apdex', direction='down', group=None, anomalous=False),
     MetricChange(metric='web_response_ms', direction='gap', group=None, anomalous=True)]
    """
    from dataclasses import replace

    flagged = {c.metric for c in changes if c.anomalous}
    broken = {c.metric for c in quality}
    return [c for c in changes if c.metric not in broken] + [
        replace(q, anomalous=q.anomalous or q.metric in flagged) for q in quality
    ]


def explained(rule: IncidentType, changes: Sequence[MetricChange]) -> tuple[int, int]:
    """How many of ``changes`` the rule's ``all`` conditions match, and how many its ``all`` or
    ``any`` conditions do: what the type is about first, then what it allows beside it."""
    core = sum(1 for c in changes if any(cond.matches(c) for cond in rule.all))
    conditions = [*rule.all, *rule.any]
    return core, sum(1 for c in changes if any(cond.matches(c) for cond in conditions))


def classify(rules: RuleSet, changes: Sequence[MetricChange]) -> IncidentType | None:
    """The best-matching type for the changes, or None when no rule applies.

    When some changes are flagged ``anomalous`` (the metrics whose anomalies make the incident; the
    others only moved with it), a type must explain at least one of them, and the type whose ``all``
    conditions explain most of them wins, then the one explaining most of them with ``all`` and
    ``any``, before the count of matched conditions: a throughput collapse during which
    the response time rose a little is not a "latency degradation", and a latency burst is not an
    "error burst" because the error share moved with it.

    >>> rules = load_rules()
    >>> moved = [MetricChange("throughput_rpm", "down", anomalous=True), MetricChange("web_response_ms", "up")]
    >>> classify(rules, moved).name
    'traffic_drop'
    >>> burst = [MetricChange("web_response_ms", "up", anomalous=True), MetricChange("error_rate", "up")]
    >>> classify(rules, burst).name
    'latency_degradation'
    """
    best: tuple[int, int, int, int, int] | None = None
    chosen: IncidentType | None = None
    index = _ChangeIndex(changes)
    flagged = [c for c in changes if c.anomalous and c.direction != "flat"]
    for pos, rule in enumerate(rules.types):
        count = rule.match_count(index)
        if count is None:
            continue
        core, covers = explained(rule, flagged) if flagged else (0, 0)
        if flagged and covers == 0:
            continue
        key = (core, covers, count, rule.priority, -pos)
        if best is None or key > best:
            best, chosen = key, rule
    return chosen
