"""Use-cases of alerting: submit candidates to the outbox, deliver it, silences, history, test sends.

``submit_alerts`` decides (rules, silences, dedup, grouping, digests) and writes every notification and
the alert state in ONE transaction; ``deliver_outbox`` sends what is due, one channel at a time in order,
with retries and backoff, and marks a notification sent only after the channel accepted it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd

from telewatch.alerts.channels import Channel, DeliveryError, build_channel
from telewatch.alerts.chart import render_chart
from telewatch.alerts.config import AlertingConfig, Rule
from telewatch.alerts.config import load_alerting_config as _load_config
from telewatch.alerts.lifecycle import (
    AlertState,
    backoff,
    digest_due,
    group_key,
    group_kind,
    idempotency_key,
    next_event,
)
from telewatch.alerts.model import (
    AlertCandidate,
    DeliveryReport,
    Matcher,
    Silence,
    SkippedCandidate,
    SubmitReport,
    severity_rank,
)
from telewatch.alerts.render import AlertEvent, Renderer
from telewatch.alerts.rules import (
    candidate_labels,
    find_rule,
    in_quiet_hours,
    rule_channels,
    rule_owner,
    rule_severity,
    sample_candidate,
    silence_for,
)
from telewatch.core.errors import ConfigError, ValidationError
from telewatch.core.faults import crash_point
from telewatch.core.secrets import redact
from telewatch.store import alerts as alert_store
from telewatch.store.db import Store

__all__ = [
    "deliver_outbox",
    "load_alerting_config",
    "submit_alerts",
]


def load_alerting_config(path: Path | str) -> AlertingConfig:
    """Channels and rules from a YAML file; :class:`ConfigError` names each bad path (and line)."""
    return _load_config(path)


def _utc(ts: pd.Timestamp | None) -> pd.Timestamp:
    if ts is None:
        return pd.Timestamp.now(tz="UTC")
    stamp = pd.Timestamp(ts)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


@dataclass
class _Bucket:
    rule: Rule
    channel: str
    group: str
    digest_at: pd.Timestamp | None
    events: list[AlertEvent] = field(default_factory=list)


def _with_series(store: Store, candidate: AlertCandidate, hours: float) -> AlertCandidate:
    """Read recent values from the store when the candidate brought none (the chart needs them)."""
    if candidate.series is not None:
        return candidate
    from dataclasses import replace

    from telewatch.store import repo

    cur = store.cursor()
    found = repo.list_metrics(cur, name=candidate.metric, selector=candidate.labels)
    exact = [m for m in found if m.labels == candidate.labels]
    if not exact:
        return candidate
    end = candidate.last_seen + pd.Timedelta(minutes=1)
    series = repo.read_series(cur, exact[0].id, start=end - pd.Timedelta(hours=hours), end=end)
    return replace(candidate, series=series) if not series.empty else candidate


def submit_alerts(
    store: Store,
    *,
    candidates: Sequence[AlertCandidate],
    rules: AlertingConfig | Sequence[Rule],
    now: pd.Timestamp | None = None,
    config: AlertingConfig | None = None,
    renderer: Renderer | None = None,
) -> SubmitReport:
    """Apply rules, silences, dedup and grouping to ``candidates`` and write the resulting notifications to
    the outbox, with the alert state, in ONE transaction (all or nothing).

    ``rules`` is the whole :class:`AlertingConfig` (channels' languages, links, templates come with it) or
    a list of rules with ``config`` giving the rest. Calling it again with the same candidates and ``now``
    writes nothing new.
    """
    if isinstance(rules, AlertingConfig):
        config = rules
        rule_list: Sequence[Rule] = rules.rules
    else:
        rule_list = rules
        config = config or AlertingConfig()
    now = _utc(now)
    renderer = renderer or renderer_for(config)
    report = SubmitReport()
    # one decision per key: a key given twice in one call counts once (its last occurrence)
    ordered = sorted({c.key: c for c in candidates}.values(), key=lambda c: (_utc(c.started_at), c.key))
    for c in ordered:
        if c.status not in {"firing", "resolved"}:
            raise ValidationError(f"alert {c.key!r}: status must be 'firing' or 'resolved', not {c.status!r}")
        if c.severity not in {"info", "warning", "critical"}:
            raise ValidationError(f"alert {c.key!r}: unknown severity {c.severity!r}")

    with store.transaction() as con:
        states = alert_store.load_states(con, [c.key for c in ordered])
        silences = alert_store.list_silences(con, now=now)
        buckets: dict[tuple[str, str, str, bool], _Bucket] = {}
        state_rows: list[dict[str, Any]] = []
        resolving = frozenset(c.key for c in ordered if c.status == "resolved")
        for c in ordered:
            _decide(
                con, c, rule_list, states.get(c.key), silences, now, report, buckets, state_rows, resolving
            )
        _drop_superseded(con, buckets, report)
        charts: dict[
            tuple[str, str], bytes | None
        ] = {}  # one chart per alert and language, shared by channels
        notification_rows = [
            _bucket_row(store, bucket, config, renderer, now, charts) for bucket in buckets.values()
        ]
        alert_store.save_states(con, state_rows)
        report.notifications.extend(alert_store.insert_notifications(con, notification_rows))
    return report


def _series_of(c: AlertCandidate) -> tuple[str, str, tuple[tuple[str, str], ...]]:
    return c.monitor, c.metric, tuple(sorted(c.labels.items()))


def _drop_superseded(
    con: Any, buckets: dict[tuple[str, str, str, bool], _Bucket], report: SubmitReport
) -> None:
    """One message when a metric's anomaly ends and a new one of the same metric starts by the same
    tick (a tweet burst at 12:57, another at 13:57): the new one is told, the old one resolves
    quietly — not "resolved" and "firing" about one metric in the same minute. Only a resolution
    whose metric is actually told again here (not one held back as pending or a blip) is dropped,
    and only one of an incident of that alert alone: an incident of several metrics is told when it
    is over, as ever (its other metrics may have resolved quietly, waiting for this one)."""
    again: dict[tuple[str, str, tuple[tuple[str, str], ...]], pd.Timestamp] = {}
    for bucket in buckets.values():
        for e in bucket.events:
            if e.event != "resolved":
                series = _series_of(e.candidate)
                start = _utc(e.candidate.started_at)
                again[series] = max(again.get(series, start), start)
    if not again:
        return
    quiet: set[str] = set()
    for key, bucket in list(buckets.items()):
        kept = []
        for e in bucket.events:
            later = again.get(_series_of(e.candidate))
            # strictly later: a forecast's two directions of one metric (one resolved, one firing)
            # are both stamped with the check's time, and neither supersedes the other
            c = e.candidate
            if (
                e.event == "resolved"
                and later is not None
                and later > _utc(c.last_seen)
                and (
                    c.incident_id is None
                    or not alert_store.incident_has_other_alerts(con, c.incident_id, c.monitor, c.key)
                )
            ):
                quiet.add(c.key)
            else:
                kept.append(e)
        if kept:
            bucket.events = kept
        else:
            del buckets[key]
    report.resolved[:] = [k for k in report.resolved if k not in quiet]
    report.deduplicated.extend(sorted(quiet - set(report.deduplicated)))


def _decide(
    con: Any,
    c: AlertCandidate,
    rule_list: Sequence[Rule],
    state: AlertState | None,
    silences: list[Silence],
    now: pd.Timestamp,
    report: SubmitReport,
    buckets: dict[tuple[str, str, str, bool], _Bucket],
    state_rows: list[dict[str, Any]],
    resolving: frozenset[str] = frozenset(),
) -> None:
    rule = find_rule(rule_list, c)
    if rule is None:
        report.skipped.append(SkippedCandidate(c.key, "no rule matches"))
        return
    severity = rule_severity(rule, c)
    if severity is None:
        if c.status == "resolved" and state is not None:
            severity = state.severity
        else:
            report.skipped.append(SkippedCandidate(c.key, f"below the severity levels of rule {rule.name!r}"))
            return
    told = state is not None and state.status == "firing" and state.notified
    # told once as already over ("back to normal"), and a later tick extended the same anomaly: people
    # know of it, so it is an update (more severe), a repeat, or nothing — not a second "firing"
    told_over = c.status == "firing" and state is not None and state.status == "resolved" and state.notified
    if (
        c.status == "firing"
        and c.recovered
        and severity_rank(severity) > severity_rank(rule.recovered_severity)
    ):
        severity = rule.recovered_severity  # already over: a person hears of it, nobody is woken
    if c.status == "firing" and not told and _utc(c.last_seen) - _utc(c.started_at) < rule.min_duration:
        report.skipped.append(SkippedCandidate(c.key, f"pending: shorter than min_duration of {rule.name!r}"))
        return

    def keep(
        *,
        status: str,
        notified: bool,
        notified_severity: str | None,
        last: pd.Timestamp | None,
        silenced_by: int | None,
    ) -> None:
        state_rows.append(
            alert_store.state_row(
                key=c.key,
                rule=rule.name,
                monitor=c.monitor,
                metric=c.metric,
                labels=dict(c.labels),
                incident_id=c.incident_id,
                status=status,
                severity=severity,
                started_at=_utc(c.started_at),
                last_seen=_utc(c.last_seen),
                notified=notified,
                notified_severity=notified_severity,
                last_notified_at=last,
                silenced_by=silenced_by,
                now=now,
            )
        )

    silence = silence_for(silences, candidate_labels(c, severity=severity), now)
    if silence is not None:
        # Silenced: remember the alert (it fires once the silence ends); say nothing now.
        if c.status == "firing":
            keep(
                status="resolved" if told_over and c.recovered else "firing",
                notified=told or told_over,
                notified_severity=state.notified_severity if state else None,
                last=state.last_notified_at if state else None,
                silenced_by=silence.id,
            )
        else:
            keep(status="resolved", notified=False, notified_severity=None, last=None, silenced_by=silence.id)
        report.silenced.append(c.key)
        return

    event = next_event(
        c,
        severity=severity,
        state=replace(state, status="firing") if told_over and state is not None else state,
        repeat_interval=rule.repeat_interval,
        now=now,
    )
    if event is None:
        if c.status == "firing":
            assert state is not None
            keep(
                status="resolved" if told_over and c.recovered else "firing",
                notified=True,
                notified_severity=state.notified_severity,
                last=state.last_notified_at,
                silenced_by=None,
            )
            report.deduplicated.append(c.key)
        else:  # resolved, but nobody was told it fired
            keep(status="resolved", notified=False, notified_severity=None, last=None, silenced_by=None)
        return
    if event == "resolved":
        keep(status="resolved", notified=False, notified_severity=None, last=now, silenced_by=None)
        if not rule.send_resolved:
            return
        if (
            rule.group_by_incident
            and c.incident_id is not None
            and alert_store.told_firing_keys(con, c.incident_id, c.monitor) - resolving - {c.key}
        ):
            # other metrics of the incident are still firing: the incident is not over, and its
            # resolved message waits for the last of them (one message, not one per metric)
            report.deduplicated.append(c.key)
            return
        report.resolved.append(c.key)
    else:
        if (
            event == "firing"
            and rule.group_by_incident
            and c.incident_id is not None
            and alert_store.incident_notified(con, c.incident_id, c.monitor)
        ):
            event = "update"  # a new metric joined an incident people already know about
        # already over when first told: the message says so, and no "resolved" message follows
        status = "resolved" if c.recovered and not told else "firing"
        keep(status=status, notified=True, notified_severity=severity, last=now, silenced_by=None)
        report.firing.append(c.key)

    digest_at: pd.Timestamp | None = None
    if rule.digest is not None and severity in rule.digest.severities:
        digest_at = digest_due(now, rule.digest.interval)
    if rule.quiet_hours is not None and severity_rank(severity) < severity_rank(
        rule.quiet_hours.min_severity
    ):
        quiet_end = in_quiet_hours(rule.quiet_hours, now)
        if quiet_end is not None:
            digest_at = quiet_end if digest_at is None else max(digest_at, quiet_end)
    if digest_at is not None:
        report.digested.append(c.key)
    owner = rule_owner(rule, c)
    group = group_key(c, by_incident=rule.group_by_incident)
    # an update that raises what people were told (a warning that lasted): the message says from what
    told_before = state.notified_severity if state is not None and told else None
    was = (
        told_before
        if event == "update"
        and told_before is not None
        and severity_rank(severity) > severity_rank(told_before)
        else None
    )
    for channel in rule_channels(rule, c):
        bucket_key = (rule.name, channel, group, digest_at is not None)
        bucket = buckets.setdefault(bucket_key, _Bucket(rule, channel, group, digest_at))
        bucket.events.append(
            AlertEvent(candidate=c, event=event, severity=severity, owner=owner, rule=rule.name, was=was)
        )


def _bucket_row(
    store: Store,
    bucket: _Bucket,
    config: AlertingConfig,
    renderer: Renderer,
    now: pd.Timestamp,
    charts: dict[tuple[str, str], bytes | None],
) -> dict[str, Any]:
    channel_config = config.channels.get(bucket.channel)
    language = channel_config.language if channel_config is not None else "en"
    send_chart = channel_config.send_chart if channel_config is not None else True
    kind = group_kind([e.event for e in bucket.events])
    chart = None
    if send_chart:  # the chart of the alert the message leads with: the most severe, most anomalous
        for e in sorted(bucket.events, key=lambda e: (-severity_rank(e.severity), -e.candidate.score)):
            if e.event != "resolved":
                cache_key = (e.candidate.key, language)
                if cache_key not in charts:
                    candidate = _with_series(store, e.candidate, config.chart_hours)
                    title = candidate.metric + (
                        " {" + ", ".join(f"{k}={v}" for k, v in sorted(candidate.labels.items())) + "}"
                        if candidate.labels
                        else ""
                    )
                    charts[cache_key] = render_chart(
                        candidate, hours=config.chart_hours, title=title, language=language
                    )
                chart = charts[cache_key]
                if chart is not None:
                    break
    rendered = renderer.render(
        bucket.events, kind=kind, language=language, now=now, chart_cid="chart" if chart else None
    )
    keys = [e.candidate.key for e in bucket.events]
    severity = max((e.severity for e in bucket.events), key=severity_rank)
    return alert_store.notification_row(
        idempotency_key=idempotency_key(
            channel=bucket.channel, group=bucket.group, kind=kind, keys=keys, now=now
        ),
        channel=bucket.channel,
        kind=kind,
        rule=bucket.rule.name,
        group_key=bucket.group,
        alert_keys=keys,
        severity=severity,
        language=language,
        subject=rendered.subject,
        body_html=rendered.body_html,
        body_email=rendered.body_email,
        body_text=rendered.body_text,
        summary=rendered.summary,
        payload={**rendered.payload, "group_key": bucket.group},
        chart_png=chart,
        status="digest" if bucket.digest_at is not None else "pending",
        created_at=now,
        next_attempt_at=bucket.digest_at if bucket.digest_at is not None else now,
    )


# -- delivery -----------------------------------------------------------------------------------
def _senders(config: AlertingConfig) -> dict[str, Channel]:
    return {
        name: build_channel(name, channel, external_url=config.links.base)
        for name, channel in config.channels.items()
    }


def deliver_outbox(
    store: Store,
    *,
    channels: AlertingConfig | Mapping[str, Channel],
    now: pd.Timestamp | None = None,
    only: Sequence[str] | None = None,
    max_per_channel: int = 1000,
    renderer: Renderer | None = None,
) -> DeliveryReport:
    """Send the due notifications of each channel, oldest first.

    A failed send is retried later with backoff; the notifications queued behind it on the same channel
    wait (order is kept). A channel over its rate limit waits for its window. A notification held by a
    process that died (``sending`` with an expired lease) is taken over; steps that process checkpointed
    are not repeated, and the same idempotency key goes with a re-send.
    """
    config = channels if isinstance(channels, AlertingConfig) else None
    senders: dict[str, Channel] = (
        _senders(channels) if isinstance(channels, AlertingConfig) else dict(channels)
    )
    renderer = renderer or (renderer_for(config) if config is not None else Renderer())
    now = _utc(now)
    report = DeliveryReport()
    crash_point("deliver.begin")
    try:
        for name in sorted(senders):
            if only is not None and name not in only:
                continue
            _flush_digests(store, name, renderer, now, report)
            _deliver_channel(store, senders[name], now, report, max_per_channel)
    finally:
        if config is not None:
            for sender in senders.values():
                sender.close()
    return report


def renderer_for(config: AlertingConfig) -> Renderer:
    """The message renderer ``config`` asks for (its template overrides, links and chart span)."""
    return Renderer(templates_dir=config.templates_dir, links=config.links, chart_hours=config.chart_hours)


def form_digests(
    store: Store, config: AlertingConfig, now: pd.Timestamp, renderer: Renderer | None = None
) -> DeliveryReport:
    """The digests due at ``now`` on every channel of ``config`` (``Rule.digest``, quiet hours),
    formed as :func:`deliver_outbox` forms them before it sends — and nothing sent: what
    ``telewatch replay``, which delivers nothing, needs to show the messages a channel would get."""
    renderer = renderer or renderer_for(config)
    report = DeliveryReport()
    for name in sorted(config.channels):
        _flush_digests(store, name, renderer, _utc(now), report)
    return report


def _flush_digests(
    store: Store, channel: str, renderer: Renderer, now: pd.Timestamp, report: DeliveryReport
) -> None:
    with store.transaction() as con:
        items = alert_store.due_digest_items(con, channel, now)
        if not items:
            return
        if len(items) == 1:  # a digest of one is just the message itself
            alert_store.release_digest_item(con, items[0]["id"], now=now)
            return
        rendered = renderer.render_digest(items, language=items[0]["language"], now=now)
        ids = [i["id"] for i in items]
        digest_id = alert_store.insert_notification(
            con,
            idempotency_key=f"{channel}:digest:{ids[0]}-{ids[-1]}:{len(ids)}",
            channel=channel,
            kind="digest",
            rule=None,
            group_key=f"digest:{channel}",
            alert_keys=sorted({k for i in items for k in (a["key"] for a in i["payload"].get("alerts", []))}),
            severity=rendered.payload["severity"],
            language=items[0]["language"],
            subject=rendered.subject,
            body_html=rendered.body_html,
            body_email=rendered.body_email,
            body_text=rendered.body_text,
            summary=rendered.summary,
            payload=rendered.payload,
            chart_png=None,
            status="pending",
            created_at=now,
            next_attempt_at=now,
        )
        if digest_id is not None:
            alert_store.mark_digested(con, ids, digest_id)
            report.digests.append(digest_id)


def _deliver_channel(
    store: Store, sender: Channel, now: pd.Timestamp, report: DeliveryReport, limit: int
) -> None:
    policy = sender.retry
    lease = pd.Timedelta(policy.lease)
    sent_here = 0
    for item in alert_store.queue(store.cursor(), sender.name):
        if sent_here >= limit:
            return
        if item.status == "sending" and item.lease_until is not None and item.lease_until > now:
            return  # another process is sending it; keep order behind it
        if item.attempts > 0 and now - item.created_at >= pd.Timedelta(policy.give_up_after):
            with store.transaction() as con:
                alert_store.mark_failed(con, item.id, reason=f"gave up after {item.attempts} attempts")
            report.gave_up.append(item.id)
            continue
        if item.next_attempt_at > now:
            if item.attempts > 0:
                return  # waiting out its backoff: what follows waits too, so order holds
            continue
        if sender.rate_limit is not None:
            window = pd.Timedelta(sender.rate_limit.per)
            if alert_store.sent_since(store.cursor(), sender.name, now - window) >= sender.rate_limit.max:
                report.rate_limited.extend(
                    q.id for q in alert_store.queue(store.cursor(), sender.name) if q.id >= item.id
                )
                return
        if not _deliver_one(store, sender, item.id, item.progress, now, lease, report):
            return
        sent_here += 1


def _deliver_one(
    store: Store,
    sender: Channel,
    notification_id: int,
    progress: dict[str, Any],
    now: pd.Timestamp,
    lease: pd.Timedelta,
    report: DeliveryReport,
) -> bool:
    with store.transaction() as con:
        attempt = alert_store.claim(con, notification_id, now=now, lease=lease)
    if attempt is None:
        return False
    crash_point("deliver.after_claim")
    message = alert_store.load_message(store.cursor(), notification_id)

    def checkpoint(done: dict[str, Any]) -> None:
        alert_store.save_progress(store.cursor(), notification_id, done)

    try:
        result = sender.send(message, progress=dict(progress), checkpoint=checkpoint)
    except DeliveryError as exc:
        error = redact(str(exc), sender.secrets())
        delay = backoff(attempt, sender.retry, retry_after=exc.retry_after)
        with store.transaction() as con:
            alert_store.finish_attempt(
                con, notification_id, attempt, ok=False, now=now, error=error, next_attempt_at=now + delay
            )
        report.failed.append(notification_id)
        report.errors[notification_id] = error
        return False
    except Exception as exc:  # a bug in a channel must not lose the notification either
        error = redact(f"{type(exc).__name__}: {exc}", sender.secrets())
        delay = backoff(attempt, sender.retry)
        with store.transaction() as con:
            alert_store.finish_attempt(
                con, notification_id, attempt, ok=False, now=now, error=error, next_attempt_at=now + delay
            )
        report.failed.append(notification_id)
        report.errors[notification_id] = error
        return False
    crash_point("deliver.after_send")  # the channel has it; the store does not know yet
    with store.transaction() as con:
        alert_store.finish_attempt(
            con, notification_id, attempt, ok=True, now=now, remote_id=result.remote_id
        )
    crash_point("deliver.after_mark")
    report.sent.append(notification_id)
    return True


def run_delivery_loop(
    store: Store, *, config: AlertingConfig, interval: float = 15.0, iterations: int | None = None
) -> DeliveryReport:
    """Deliver every ``interval`` seconds (``iterations`` rounds, or forever); the last round's report."""
    report = DeliveryReport()
    done = 0
    while iterations is None or done < iterations:
        report = deliver_outbox(store, channels=config)
        done += 1
        if iterations is None or done < iterations:
            time.sleep(interval)
    return report


# -- test sends ---------------------------------------------------------------------------------
def send_test(
    store: Store, *, config: AlertingConfig, channel: str, now: pd.Timestamp | None = None
) -> dict[str, Any]:
    """Render a sample alert for ``channel`` and send it now (recorded in the history as kind ``test``)."""
    now = _utc(now)
    channel_config = config.channel(channel)
    renderer = renderer_for(config)
    candidate = sample_candidate(now=now, key=f"test:{channel}:{now.isoformat()}")
    event = AlertEvent(
        candidate=candidate, event="firing", severity="critical", owner=candidate.owner, rule="test"
    )
    chart = (
        render_chart(candidate, hours=config.chart_hours, language=channel_config.language)
        if (channel_config.send_chart)
        else None
    )
    rendered = renderer.render(
        [event], kind="test", language=channel_config.language, now=now, chart_cid="chart" if chart else None
    )
    with store.transaction() as con:
        notification_id = alert_store.insert_notification(
            con,
            idempotency_key=f"{channel}:test:{now.strftime('%Y%m%dT%H%M%S.%fZ')}",
            channel=channel,
            kind="test",
            rule=None,
            group_key=candidate.key,
            alert_keys=[candidate.key],
            severity="critical",
            language=channel_config.language,
            subject="[TEST] " + rendered.subject,
            body_html="🧪 <b>TEST</b>\n" + rendered.body_html,
            body_email=rendered.body_email,
            body_text="[TEST]\n" + rendered.body_text,
            summary="[TEST] " + rendered.summary,
            payload=rendered.payload,
            chart_png=chart,
            status="pending",
            created_at=now,
            next_attempt_at=now,
        )
    if notification_id is None:
        raise ValidationError("a test was already sent to this channel at this very moment")
    sender = build_channel(channel, channel_config, external_url=config.links.base)
    report = DeliveryReport()
    try:
        _deliver_one(store, sender, notification_id, {}, now, pd.Timedelta(sender.retry.lease), report)
    finally:
        sender.close()
    ok = notification_id in report.sent
    if not ok:  # a test that failed is not retried later: the user is watching now
        with store.transaction() as con:
            alert_store.mark_failed(con, notification_id, reason="test send failed")
    return {
        "notification_id": notification_id,
        "channel": channel,
        "ok": ok,
        "error": report.errors.get(notification_id),
        "subject": rendered.subject,
    }


# -- silences and history -----------------------------------------------------------------------
def add_silence(
    store: Store,
    *,
    matchers: Sequence[Matcher],
    ends_at: pd.Timestamp,
    starts_at: pd.Timestamp | None = None,
    created_by: str = "unknown",
    comment: str = "",
    now: pd.Timestamp | None = None,
) -> Silence:
    """Silence alerts matching every matcher from ``starts_at`` (default now) until ``ends_at``."""
    now = _utc(now)
    start = _utc(starts_at) if starts_at is not None else now
    end = _utc(ends_at)
    if not matchers:
        raise ValidationError("a silence needs at least one matcher (e.g. metric=web_latency)")
    if end <= start:
        raise ValidationError(f"a silence must end after it starts ({start} .. {end})")
    with store.transaction() as con:
        return alert_store.insert_silence(
            con,
            matchers=matchers,
            starts_at=start,
            ends_at=end,
            created_by=created_by,
            comment=comment,
            now=now,
        )


def list_silences(
    store: Store, *, include_expired: bool = False, now: pd.Timestamp | None = None
) -> list[Silence]:
    return alert_store.list_silences(store.cursor(), now=_utc(now), include_expired=include_expired)


def expire_silence(store: Store, *, silence_id: int, now: pd.Timestamp | None = None) -> Silence:
    with store.transaction() as con:
        return alert_store.expire_silence(con, silence_id, now=_utc(now))


def notification_history(
    store: Store,
    *,
    channel: str | None = None,
    status: str | None = None,
    key: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """Stored notifications, newest first, each with its delivery status and attempt count."""
    return alert_store.history(
        store.cursor(), channel=channel, status=status, key=key, limit=limit, offset=offset
    )


def notification_detail(store: Store, *, notification_id: int) -> dict[str, Any]:
    """One notification with its rendered text and every delivery attempt."""
    return alert_store.notification(store.cursor(), notification_id)


def notification_chart(store: Store, *, notification_id: int) -> bytes | None:
    """The chart PNG attached to a notification (None when it has none)."""
    return alert_store.chart_png(store.cursor(), notification_id)


def describe_channels(config: AlertingConfig) -> list[dict[str, Any]]:
    """The configured channels without secrets."""
    out = []
    for name, channel_config in config.channels.items():
        sender = build_channel(name, channel_config, external_url=config.links.base)
        try:
            out.append(sender.describe())
        finally:
            sender.close()
    return out


def ensure_channel(config: AlertingConfig, name: str) -> None:
    if name not in config.channels:
        raise ConfigError(
            f"no channel named {name!r} (configured: {', '.join(sorted(config.channels)) or 'none'})"
        )
