"""``telewatch alerts`` (test, deliver, history, channels) and ``telewatch silences`` (add, list, expire)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from telewatch.cli.common import DbOption
from telewatch.core.errors import TelewatchError

alerts_app = typer.Typer(
    help="Alerting: test a channel, deliver the outbox, notification history.", no_args_is_help=True
)
silences_app = typer.Typer(help="Silences: mute alerts matching labels for a while.", no_args_is_help=True)
console = Console()
err_console = Console(stderr=True)

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        help="Alerting YAML (channels and rules); default $TELEWATCH_ALERTING_CONFIG.",
        dir_okay=False,
    ),
]


def register(app: typer.Typer) -> None:
    """Add the ``alerts`` and ``silences`` groups to the main CLI."""
    app.add_typer(alerts_app, name="alerts")
    app.add_typer(silences_app, name="silences")


def _store(db: Path | None) -> Any:
    from telewatch.settings import Settings
    from telewatch.store.db import Store

    settings = Settings() if db is None else Settings(db_path=db)
    return Store(settings.store_path)


def _config(path: Path | None) -> Any:
    from telewatch.services.alerting import load_alerting_config

    chosen = path or (
        Path(os.environ["TELEWATCH_ALERTING_CONFIG"]) if os.environ.get("TELEWATCH_ALERTING_CONFIG") else None
    )
    if chosen is None:
        raise typer.BadParameter("give --config FILE (or set TELEWATCH_ALERTING_CONFIG)")
    return load_alerting_config(chosen)


def _fail(exc: Exception) -> typer.Exit:
    err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
    return typer.Exit(code=2)


def _ts(ts: Any) -> str:
    return "—" if ts is None else ts.strftime("%Y-%m-%d %H:%M:%S")


@alerts_app.command("test")
def send_test_alert(
    channel: Annotated[str, typer.Option("--channel", help="The channel to send a sample alert to.")],
    config: ConfigOption = None,
    db: DbOption = None,
) -> None:
    """Send a sample alert (a latency spike with its chart) to one channel, now, and say how it went."""
    from telewatch.services.alerting import send_test

    try:
        cfg = _config(config)
        cfg.channel(channel)
        with _store(db) as store:
            result = send_test(store, config=cfg, channel=channel)
    except TelewatchError as exc:
        raise _fail(exc) from exc
    if result["ok"]:
        console.print(f"[green]sent[/] a test alert to {channel} (notification {result['notification_id']})")
        return
    err_console.print(
        f"[bold red]failed[/] to send to {channel}: {result['error']}", highlight=False, soft_wrap=True
    )
    raise typer.Exit(code=1)


@alerts_app.command("deliver")
def deliver(
    config: ConfigOption = None,
    loop: Annotated[bool, typer.Option("--loop", help="Keep delivering every --interval seconds.")] = False,
    interval: Annotated[float, typer.Option(help="Seconds between rounds with --loop.", min=0.1)] = 15.0,
    channel: Annotated[list[str] | None, typer.Option(help="Only these channels (repeatable).")] = None,
    db: DbOption = None,
) -> None:
    """Send what is due in the outbox (retries with backoff; nothing is marked sent before the channel accepts)."""
    from telewatch.services.alerting import deliver_outbox

    try:
        cfg = _config(config)
        with _store(db) as store:
            while True:
                report = deliver_outbox(store, channels=cfg, only=channel)
                line = (
                    f"sent {len(report.sent)}, failed {len(report.failed)} (will retry), gave up {len(report.gave_up)},"
                    f" rate-limited {len(report.rate_limited)}, digests {len(report.digests)}"
                )
                console.print(line)
                for nid, error in report.errors.items():
                    err_console.print(f"  notification {nid}: {error}", highlight=False, soft_wrap=True)
                if not loop:
                    break
                time.sleep(interval)
    except TelewatchError as exc:
        raise _fail(exc) from exc
    except KeyboardInterrupt:
        console.print("stopped")


@alerts_app.command("history")
def history(
    channel: Annotated[str | None, typer.Option(help="Only this channel.")] = None,
    status: Annotated[
        str | None, typer.Option(help="pending, sending, sent, failed, digest or digested.")
    ] = None,
    key: Annotated[str | None, typer.Option(help="Only notifications carrying this alert key.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
    attempts: Annotated[bool, typer.Option("--attempts", help="Show each delivery attempt.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    db: DbOption = None,
) -> None:
    """Every notification written to the outbox, newest first, with its delivery status."""
    from telewatch.services.alerting import notification_detail, notification_history

    try:
        with _store(db) as store:
            rows = notification_history(store, channel=channel, status=status, key=key, limit=limit)
            if attempts or as_json:
                for row in rows:
                    row["attempts_log"] = notification_detail(store, notification_id=row["id"])[
                        "attempts_log"
                    ]
    except TelewatchError as exc:
        raise _fail(exc) from exc
    if as_json:
        console.print_json(json.dumps(rows, default=str))
        return
    table = Table(title=f"{len(rows)} notifications")
    for col in ("id", "created", "channel", "kind", "severity", "status", "tries", "sent", "subject / error"):
        table.add_column(col)
    for r in rows:
        detail = r["subject"] + (f"\n[red]{r['last_error']}[/]" if r["last_error"] else "")
        table.add_row(
            str(r["id"]),
            _ts(r["created_at"]),
            r["channel"],
            r["kind"],
            r["severity"],
            r["status"],
            str(r["attempts"]),
            _ts(r["sent_at"]),
            detail,
        )
        if attempts:
            for a in r["attempts_log"]:
                outcome = "ok" if a["ok"] else ("?" if a["ok"] is None else "failed")
                table.add_row(
                    "",
                    _ts(a["started_at"]),
                    "",
                    f"attempt {a['attempt']}",
                    "",
                    outcome,
                    "",
                    "",
                    a["error"] or (a["remote_id"] or ""),
                )
    console.print(table)


@alerts_app.command("channels")
def channels(config: ConfigOption = None) -> None:
    """Validate the alerting configuration and list its channels (secrets are never shown)."""
    from telewatch.services.alerting import describe_channels

    try:
        cfg = _config(config)
    except TelewatchError as exc:
        raise _fail(exc) from exc
    table = Table(title=f"{len(cfg.channels)} channels, {len(cfg.rules)} rules")
    table.add_column("name")
    table.add_column("type")
    table.add_column("settings")
    for d in describe_channels(cfg):
        rest = ", ".join(f"{k}={v}" for k, v in d.items() if k not in {"name", "type"})
        table.add_row(d["name"], d["type"], rest)
    console.print(table)


# -- silences -----------------------------------------------------------------------------------
@silences_app.command("add")
def silence_add(
    matcher: Annotated[
        list[str],
        typer.Option(
            "--matcher", "-m", help="NAME=VALUE, NAME!=VALUE, NAME=~REGEX, NAME!~REGEX (repeatable)."
        ),
    ],
    duration: Annotated[str | None, typer.Option(help="How long, e.g. 2h or 30m (default 1h).")] = None,
    until: Annotated[
        str | None, typer.Option(help="End time (ISO 8601, UTC unless it has an offset).")
    ] = None,
    start: Annotated[str | None, typer.Option(help="Start time (default now).")] = None,
    comment: Annotated[str, typer.Option(help="Why.")] = "",
    by: Annotated[str, typer.Option("--by", help="Who (default $USER).")] = "",
    db: DbOption = None,
) -> None:
    """Silence alerts whose labels match every matcher (labels plus metric, monitor, severity, group)."""
    import pandas as pd

    from telewatch.alerts.rules import parse_matcher
    from telewatch.core.durations import parse_duration
    from telewatch.services.alerting import add_silence
    from telewatch.services.catalog import parse_time

    try:
        matchers = [parse_matcher(m) for m in matcher]
        now = pd.Timestamp.now(tz="UTC")
        begin = parse_time(start, what="--start") if start else now
        assert begin is not None
        if until:
            end = parse_time(until, what="--until")
        else:
            try:
                end = begin + pd.Timedelta(parse_duration(duration or "1h"))
            except ValueError as exc:
                raise typer.BadParameter(str(exc), param_hint="--duration") from exc
        assert end is not None
        with _store(db) as store:
            silence = add_silence(
                store,
                matchers=matchers,
                starts_at=begin,
                ends_at=end,
                created_by=by or os.environ.get("USER", "cli"),
                comment=comment,
                now=now,
            )
    except TelewatchError as exc:
        raise _fail(exc) from exc
    text = ", ".join(f"{m.name}{m.op}{m.value}" for m in silence.matchers)
    console.print(
        f"silence {silence.id}: {text} from {_ts(silence.starts_at)} until {_ts(silence.ends_at)} UTC"
    )


@silences_app.command("list")
def silence_list(
    show_all: Annotated[bool, typer.Option("--all", help="Include expired silences.")] = False,
    db: DbOption = None,
) -> None:
    """Active (and with --all, expired) silences."""
    from telewatch.services.alerting import list_silences

    with _store(db) as store:
        found = list_silences(store, include_expired=show_all)
    table = Table(title=f"{len(found)} silences")
    for col in ("id", "matchers", "starts", "ends", "state", "by", "comment"):
        table.add_column(col)
    for s in found:
        table.add_row(
            str(s.id),
            ", ".join(f"{m.name}{m.op}{m.value}" for m in s.matchers),
            _ts(s.starts_at),
            _ts(s.ends_at),
            s.state,
            s.created_by,
            s.comment,
        )
    console.print(table)


@silences_app.command("expire")
def silence_expire(
    silence_id: Annotated[int, typer.Argument(help="The silence's id (see `telewatch silences list`).")],
    db: DbOption = None,
) -> None:
    """End a silence now."""
    from telewatch.services.alerting import expire_silence

    try:
        with _store(db) as store:
            silence = expire_silence(store, silence_id=silence_id)
    except TelewatchError as exc:
        raise _fail(exc) from exc
    console.print(f"silence {silence.id} expired at {_ts(silence.expired_at)} UTC")
