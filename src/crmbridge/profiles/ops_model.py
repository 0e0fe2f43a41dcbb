"""What a profile (transfer or sync) may say about running unattended: when, and whom to tell.

    schedule: {cron: "0 2 * * *", timezone: Europe/Berlin, missed: run_once}
    notify: {on: [failure, rejects], email: [ops@example.com], webhook: https://hooks.example/x}

docs/schedules.md and docs/operations.md describe them; the same ``notify`` model is the
global setting in ``<crmbridge home>/settings.yaml``.
"""

from __future__ import annotations

import enum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_enum_values=False)


class Missed(enum.StrEnum):
    """What a schedule does about the runs it missed while crmbridge was not running."""

    #: missed runs are logged and not made up; the next run is at the next scheduled time
    SKIP = "skip"
    #: one run as soon as the scheduler is back, however many were missed
    RUN_ONCE = "run_once"


def check_timezone(value: str) -> str:
    """``value`` when it names an IANA time zone; else ValueError with an example."""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r} (e.g. UTC, Europe/Berlin)") from None
    return value


def check_cron(value: str) -> str:
    """``value`` when it is a five-field cron expression; else ValueError saying why."""
    from croniter import croniter

    text = " ".join(value.split())
    if len(text.split(" ")) != 5 or not croniter.is_valid(text):
        raise ValueError(
            f"not a cron expression: {value!r} (five fields: minute hour day month weekday, "
            'e.g. "0 2 * * *" for 02:00 every day)'
        )
    return text


class Schedule(_Strict):
    """When the profile runs by itself (``crmbridge schedule add`` registers it)."""

    cron: str = Field(
        description='five-field cron expression, minute hour day month weekday: "0 2 * * *"'
    )
    timezone: str = Field(
        default="UTC", description="the IANA time zone the cron expression is read in"
    )
    missed: Missed = Field(
        default=Missed.SKIP,
        description="runs missed while the scheduler was down: skip them, or run once",
    )

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        return check_cron(value)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        return check_timezone(value)


class NotifyOn(enum.StrEnum):
    #: the run failed or was interrupted
    FAILURE = "failure"
    #: the run finished but rejected records
    REJECTS = "rejects"
    #: every run that ended (also successful ones)
    ALWAYS = "always"


class Notify(_Strict):
    """Whom to tell when a run ends badly: e-mail addresses and/or a webhook URL."""

    on: list[NotifyOn] = Field(
        default_factory=lambda: [NotifyOn.FAILURE, NotifyOn.REJECTS],
        description="failure, rejects, always",
    )
    email: list[str] = Field(default_factory=list, description="addresses to e-mail")
    webhook: str | None = Field(
        default=None, description="URL that gets a JSON POST describing the run"
    )

    @field_validator("email")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        for address in value:
            if "@" not in address or " " in address.strip():
                raise ValueError(f"not an e-mail address: {address!r}")
        return [a.strip() for a in value]

    @field_validator("webhook")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError(f"a webhook is an http:// or https:// URL, not {value!r}")
        return value


class Smtp(_Strict):
    """The mail server notifications go through (``smtp:`` in the global settings). The
    password, when the server wants one, is read from ``CRMBRIDGE_SECRET_SMTP_PASSWORD``."""

    host: str = Field(default="localhost", description="the SMTP server")
    port: int = Field(default=25, ge=1, le=65535)
    sender: str = Field(default="crmbridge@localhost", description="the From: address")
    username: str | None = Field(default=None, description="log in as this user")
    starttls: bool = Field(default=False, description="switch to TLS after connecting")
    ssl: bool = Field(default=False, description="TLS from the start (port 465)")


class LogFormat(enum.StrEnum):
    TEXT = "text"
    JSON = "json"


class Settings(_Strict):
    """``<crmbridge home>/settings.yaml``: what holds for every profile."""

    notify: Notify | None = Field(
        default=None, description="used for the profiles that have no notify: of their own"
    )
    smtp: Smtp = Field(default_factory=Smtp)
    log_format: LogFormat | None = Field(
        default=None, description="text or json (the --log-format option wins)"
    )


__all__ = [
    "LogFormat",
    "Missed",
    "Notify",
    "NotifyOn",
    "Schedule",
    "Settings",
    "Smtp",
    "check_cron",
    "check_timezone",
]
