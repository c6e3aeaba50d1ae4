"""Alerting configuration: channels, rules, links and templates, validated when the file is loaded.

A malformed file fails at load time with every problem named by its path in the file (and line),
e.g. ``alerting.yaml: channels.ops.bot_token (line 7): ...`` — not at 3 a.m. when the first alert fires.

Strings may reference the environment as ``${NAME}`` or ``${NAME:-default}`` so secrets stay out of
the file. Secrets (bot tokens, passwords, webhook headers) are :class:`pydantic.SecretStr`: they never
appear in reprs, logs or API answers.
"""

from __future__ import annotations

import os
import re
from datetime import time as dtime
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    AnyHttpUrl,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic import ValidationError as PydanticValidationError

from telewatch.alerts.links import LINK_FIELDS, DashboardLink, Links, format_link
from telewatch.alerts.render import check_templates
from telewatch.core.durations import Duration
from telewatch.core.errors import ConfigError
from telewatch.core.yamlfile import error_position, parse_with_lines

__all__ = [
    "LINK_FIELDS",
    "AlertingConfig",
    "DashboardLink",
    "Links",
    "format_link",
    "load_alerting_config",
    "parse_alerting_config",
]

Language = Literal["en", "ru"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RateLimit(_Model):
    """At most ``max`` messages per ``per`` to one channel; the rest wait (in order) for the window."""

    max: int = Field(ge=1)
    per: Duration = timedelta(hours=1)


class RetryPolicy(_Model):
    """Backoff between attempts: ``initial`` doubling up to ``max``; give up after ``give_up_after``."""

    initial: Duration = timedelta(seconds=10)
    max: Duration = timedelta(minutes=5)
    give_up_after: Duration = timedelta(days=1)
    lease: Duration = timedelta(minutes=2)


class _ChannelBase(_Model):
    language: Language = "en"
    rate_limit: RateLimit | None = None
    send_chart: bool = True
    timeout: Duration = timedelta(seconds=15)
    retry: RetryPolicy = RetryPolicy()


class TelegramChannel(_ChannelBase):
    type: Literal["telegram"]
    bot_token: SecretStr
    chat_id: int | str
    api_base: AnyHttpUrl = AnyHttpUrl("https://api.telegram.org")
    message_thread_id: int | None = None
    disable_notification_below: Literal["info", "warning", "critical"] | None = None

    @field_validator("bot_token")
    @classmethod
    def _token_shape(cls, v: SecretStr) -> SecretStr:
        if not re.fullmatch(r"\d+:[A-Za-z0-9_-]{10,}", v.get_secret_value()):
            raise ValueError("a bot token looks like 123456:ABC-DEF1234ghIkl (from @BotFather)")
        return v

    @field_validator("chat_id")
    @classmethod
    def _chat_shape(cls, v: int | str) -> int | str:
        if isinstance(v, str):
            if re.fullmatch(r"-?\d+", v):
                return int(v)
            if not re.fullmatch(r"@[A-Za-z][A-Za-z0-9_]{3,}", v):
                raise ValueError("chat_id is a number (e.g. -1001234567890) or a public @channelname")
        return v


class EmailChannel(_ChannelBase):
    type: Literal["email"]
    host: str = Field(min_length=1)
    port: int = Field(default=587, ge=1, le=65535)
    security: Literal["starttls", "ssl", "none"] = "starttls"
    username: str | None = None
    password: SecretStr | None = None
    sender: str = Field(alias="from", min_length=3)
    to: list[str] = Field(min_length=1)
    ca_file: Path | None = None  # trust this CA (a self-signed server certificate) instead of the system's
    verify: bool = True

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("to")
    @classmethod
    def _addresses(cls, v: list[str]) -> list[str]:
        for address in v:
            if not re.fullmatch(r"[^@\s<>]+@[^@\s<>]+", address.strip()):
                raise ValueError(f"{address!r} is not an e-mail address")
        return v

    @model_validator(mode="after")
    def _login_pair(self) -> EmailChannel:
        if (self.username is None) != (self.password is None):
            raise ValueError("give both username and password, or neither")
        if self.ca_file is not None and not self.ca_file.is_file():
            raise ValueError(f"ca_file {self.ca_file} does not exist")
        return self


class WebhookChannel(_ChannelBase):
    type: Literal["webhook"]
    url: AnyHttpUrl
    format: Literal["slack", "alertmanager", "json"] = "json"
    headers: dict[str, SecretStr] = Field(default_factory=dict)
    send_chart: bool = False  # a base64 PNG in the JSON body (format json only)


Channel = Annotated[TelegramChannel | EmailChannel | WebhookChannel, Field(discriminator="type")]


class Match(_Model):
    """Which alerts a rule (or route, owner, ...) applies to. Patterns are shell globs (``web_*``);
    every given field must match; an empty match takes everything."""

    monitors: list[str] = Field(default_factory=list)
    metrics: list[str] = Field(default_factory=list)
    labels: dict[str, str] = Field(default_factory=dict)
    incident_types: list[str] = Field(default_factory=list)
    groups: list[str] = Field(default_factory=list)


class SeverityLevel(_Model):
    """``level`` applies when the calibrated score reaches ``min_score`` and, for each of the others
    that is given: the absolute deviation reaches ``min_deviation_pct``; the anomaly has lasted
    ``min_duration`` (from its first to its latest anomalous point: a page for what is sustained);
    its incident holds ``min_metrics`` anomalous metrics or more (the metric and those related: a
    page for what shows on several signals at once)."""

    level: Literal["info", "warning", "critical"]
    min_score: float = 0.0
    min_deviation_pct: float | None = Field(default=None, ge=0)
    min_duration: Duration | None = None
    min_metrics: int | None = Field(default=None, ge=1)


class Route(_Model):
    match: Match
    channels: list[str] = Field(min_length=1)
    continue_: bool = Field(default=False, alias="continue")
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class OwnerRule(_Model):
    match: Match
    owner: str = Field(pattern=r"^@[\w.-]+$")


class QuietHours(_Model):
    """Between ``start`` and ``end`` (local ``timezone``) alerts below ``min_severity`` are held and sent as one
    digest when quiet hours end."""

    start: dtime
    end: dtime
    timezone: str = "UTC"
    min_severity: Literal["warning", "critical"] = "critical"

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {v!r} (use an IANA name like Europe/Moscow)") from exc
        return v


class Digest(_Model):
    """Alerts of ``severities`` are not sent one by one but collected into one message every ``interval``."""

    severities: list[Literal["info", "warning", "critical"]] = Field(
        default_factory=lambda: ["info"]  # type: ignore[arg-type]
    )
    interval: Duration = timedelta(hours=1)


class Rule(_Model):
    name: str = Field(min_length=1)
    match: Match = Match()
    severity: list[SeverityLevel] = Field(default_factory=list)
    min_duration: Duration = timedelta(0)
    repeat_interval: Duration = timedelta(hours=4)
    channels: list[str] = Field(default_factory=list)
    routes: list[Route] = Field(default_factory=list)
    owner: str | None = Field(default=None, pattern=r"^@[\w.-]+$")
    owners: list[OwnerRule] = Field(default_factory=list)
    group_by_incident: bool = True
    send_resolved: bool = True
    #: the highest severity of an alert that is already over when it is first told (a two-minute
    #: burst found by a tick ten minutes later): critical pages are for what is happening now
    recovered_severity: Literal["info", "warning", "critical"] = "warning"
    quiet_hours: QuietHours | None = None
    digest: Digest | None = None


class AlertingConfig(_Model):
    links: Links = Links()
    templates_dir: Path | None = None
    chart_hours: float = Field(default=6.0, gt=0, le=24 * 14)
    channels: dict[str, Channel] = Field(default_factory=dict)
    rules: list[Rule] = Field(default_factory=list)

    @model_validator(mode="after")
    def _references(self) -> AlertingConfig:
        problems = []
        names = set()
        for i, rule in enumerate(self.rules):
            if rule.name in names:
                problems.append(f"rules.{i}.name: rule name {rule.name!r} is used twice")
            names.add(rule.name)
            for j, channel in enumerate(rule.channels):
                if channel not in self.channels:
                    problems.append(f"rules.{i}.channels.{j}: no channel named {channel!r}")
            for k, route in enumerate(rule.routes):
                for j, channel in enumerate(route.channels):
                    if channel not in self.channels:
                        problems.append(f"rules.{i}.routes.{k}.channels.{j}: no channel named {channel!r}")
            if not rule.channels and not rule.routes:
                problems.append(f"rules.{i}: a rule needs channels or routes")
        if self.templates_dir is not None and not self.templates_dir.is_dir():
            problems.append(f"templates_dir: {self.templates_dir} is not a directory")
        elif self.templates_dir is not None:
            try:  # a sandboxed trial render of every override
                check_templates(self.templates_dir)
            except ConfigError as exc:
                problems.append(f"templates_dir: {exc}")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def channel(self, name: str) -> TelegramChannel | EmailChannel | WebhookChannel:
        try:
            return self.channels[name]
        except KeyError:
            known = ", ".join(sorted(self.channels)) or "none"
            raise ConfigError(f"no channel named {name!r} (configured: {known})") from None


# -- loading ------------------------------------------------------------------------------------
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def _expand(value: Any, path: tuple[str | int, ...], problems: list[str]) -> Any:
    if isinstance(value, dict):
        return {k: _expand(v, (*path, k), problems) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v, (*path, i), problems) for i, v in enumerate(value)]
    if isinstance(value, str):

        def sub(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in os.environ:
                return os.environ[name]
            if default is not None:
                return default
            problems.append(f"{'.'.join(map(str, path))}: environment variable {name} is not set")
            return ""

        return _ENV.sub(sub, value)
    return value


def _resolve_relative(data: dict[str, Any], base: Path) -> None:
    if isinstance(data.get("templates_dir"), str):
        data["templates_dir"] = str((base / data["templates_dir"]).resolve())
    for channel in (data.get("channels") or {}).values():
        if isinstance(channel, dict) and isinstance(channel.get("ca_file"), str):
            channel["ca_file"] = str((base / channel["ca_file"]).resolve())


def parse_alerting_config(
    data: Any, *, source: str = "<config>", lines: dict[tuple[str | int, ...], int] | None = None
) -> AlertingConfig:
    """Validate an already-parsed mapping (the ``alerting:`` section of a monitor file, or the whole file)."""
    prefix: tuple[str | int, ...] = ()
    if isinstance(data, dict) and "alerting" in data:
        data, prefix = data["alerting"], ("alerting",)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the alerting configuration must be a mapping")
    problems: list[str] = []
    data = _expand(data, prefix, problems)
    if problems:
        raise ConfigError(f"{source}: " + "; ".join(problems))
    if source != "<config>":
        _resolve_relative(data, Path(source).parent)
    try:
        return AlertingConfig.model_validate(data)
    except PydanticValidationError as exc:
        raise ConfigError(_describe(exc, source=source, prefix=prefix, lines=lines or {})) from None


def _describe(
    exc: PydanticValidationError,
    *,
    source: str,
    prefix: tuple[str | int, ...],
    lines: dict[tuple[str | int, ...], int],
) -> str:
    parts = []
    for err in exc.errors():
        loc = list(err["loc"])
        if len(loc) > 2 and loc[0] == "channels" and loc[2] in {"telegram", "email", "webhook"}:
            del loc[2]  # the union's tag, not a key of the file
        full = (*prefix, *loc)
        line = None
        for cut in range(len(full), -1, -1):  # the nearest line we know: the key itself or its parent
            if full[:cut] in lines:
                line = lines[full[:cut]]
                break
        where = ".".join(str(p) for p in full) or "(top level)"
        msg = str(err["msg"]).removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown setting (check the spelling)"
        parts.append(f"{where}" + (f" (line {line})" if line else "") + f": {msg}")
    return f"{source}: invalid alerting configuration: " + "; ".join(parts)


def load_alerting_config(path: Path | str) -> AlertingConfig:
    """Read and validate an alerting YAML file; raise :class:`ConfigError` naming each bad path and line."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read the alerting configuration {file}: {exc.strerror}") from exc
    try:
        data, lines = parse_with_lines(text)
    except yaml.YAMLError as exc:
        where = error_position(exc)[1]
        raise ConfigError(f"{file}{where}: not valid YAML: {getattr(exc, 'problem', exc)}") from exc
    return parse_alerting_config(data, source=str(file), lines=lines)
