"""Telling someone that a run failed or rejected records: an e-mail, a webhook, or both.

    event = RunEvent(profile="leads", kind="transfer", run_id=12, status="failed", ...)
    notify(event, loaded.profile.notify)   # the profile's notify:, else the global one

Which runs: ``notify.on`` lists ``failure`` (failed or interrupted), ``rejects`` (finished
with rejected records) and/or ``always``. The e-mail goes through the SMTP server of the
global settings (``smtp:``; password from ``CRMBRIDGE_SECRET_SMTP_PASSWORD``); the webhook
gets a JSON POST of :meth:`RunEvent.as_json`. A notification that cannot be sent is logged as
a warning: it never changes how the run ended or its exit code.
"""

from __future__ import annotations

import logging
import os
import smtplib
import socket
from dataclasses import asdict, dataclass, field
from email.message import EmailMessage
from typing import Any

from crmbridge.profiles.ops_model import Notify, NotifyOn, Settings, Smtp

log = logging.getLogger("crmbridge.notify")

#: environment variable with the SMTP password
SMTP_PASSWORD_ENV = "CRMBRIDGE_SECRET_SMTP_PASSWORD"
#: seconds to wait for the mail server or the webhook
TIMEOUT = 15.0

_FAILED = {"failed", "interrupted"}
_REJECTS = "finished_with_rejects"


@dataclass(frozen=True)
class RunEvent:
    """How one run ended, as notifications and logs tell it."""

    profile: str
    #: transfer or sync
    kind: str
    run_id: int | None
    status: str
    counts: dict[str, int] = field(default_factory=dict)
    error: str | None = None
    error_file: str | None = None
    host: str = field(default_factory=socket.gethostname)

    @property
    def rejected(self) -> int:
        return int(self.counts.get("rejected", 0))

    def wanted_by(self, on: list[NotifyOn]) -> bool:
        """Does a notification that is ``on`` these events want this run?"""
        if NotifyOn.ALWAYS in on:
            return True
        if NotifyOn.FAILURE in on and self.status in _FAILED:
            return True
        return NotifyOn.REJECTS in on and (self.status == _REJECTS or self.rejected > 0)

    @property
    def headline(self) -> str:
        run = f"run {self.run_id} of " if self.run_id is not None else ""
        if self.status in _FAILED:
            return f"{run}{self.profile} {self.status}"
        if self.rejected:
            return f"{run}{self.profile} rejected {self.rejected} records"
        return f"{run}{self.profile} {self.status.replace('_', ' ')}"

    def as_json(self) -> dict[str, Any]:
        return {"event": "run_ended", "summary": self.headline, **asdict(self)}

    def text(self) -> str:
        counts = ", ".join(f"{k} {v}" for k, v in sorted(self.counts.items()) if v)
        lines = [
            self.headline,
            "",
            f"status: {self.status}",
            f"counts: {counts or 'none'}",
            f"host: {self.host}",
        ]
        if self.error:
            lines.append(f"error: {self.error}")
        if self.error_file:
            lines.append(f"rejected records and their reasons: {self.error_file}")
        if self.run_id is not None:
            lines.append(f"details: crmbridge show {self.run_id}")
        return "\n".join(lines) + "\n"


def notify(event: RunEvent, own: Notify | None, settings: Settings | None = None) -> list[str]:
    """Send the notifications ``event`` calls for: the profile's ``own`` settings, else the
    global ones. What was sent ("email to a@x", "webhook https://..."); failures are logged."""
    if settings is None:
        from crmbridge.ops.settings import load_settings

        try:
            settings = load_settings()
        except Exception as err:  # a broken settings file must not break the run's end
            log.warning("notifications not sent: %s", err)
            return []
    rule = own or settings.notify
    if rule is None or not event.wanted_by(rule.on):
        return []
    sent = []
    if rule.email:
        try:
            send_email(event, rule.email, settings.smtp)
            sent.append("email to " + ", ".join(rule.email))
        except (OSError, smtplib.SMTPException) as err:
            log.warning(
                "could not e-mail %s about %s: %s",
                ", ".join(rule.email),
                event.headline,
                err,
                extra={"run_id": event.run_id, "profile": event.profile},
            )
    if rule.webhook:
        import httpx  # here: most runs notify nobody, and httpx costs ~60 ms to import

        try:
            post_webhook(event, rule.webhook)
            sent.append(f"webhook {rule.webhook}")
        except httpx.HTTPError as err:
            log.warning(
                "could not call the webhook %s about %s: %s",
                rule.webhook,
                event.headline,
                err,
                extra={"run_id": event.run_id, "profile": event.profile},
            )
    return sent


def send_email(event: RunEvent, to: list[str], smtp: Smtp) -> None:
    message = EmailMessage()
    message["Subject"] = f"crmbridge: {event.headline}"
    message["From"] = smtp.sender
    message["To"] = ", ".join(to)
    message.set_content(event.text())
    kind = smtplib.SMTP_SSL if smtp.ssl else smtplib.SMTP
    with kind(smtp.host, smtp.port, timeout=TIMEOUT) as server:
        if smtp.starttls:
            server.starttls()
        if smtp.username:
            server.login(smtp.username, os.environ.get(SMTP_PASSWORD_ENV, ""))
        server.send_message(message)


def post_webhook(event: RunEvent, url: str) -> None:
    import httpx

    response = httpx.post(url, json=event.as_json(), timeout=TIMEOUT)
    response.raise_for_status()


def run_ended(event: RunEvent, own: Notify | None, settings: Settings | None = None) -> list[str]:
    """Log how a real run ended (one structured record on ``crmbridge.run``) and send the
    notifications it calls for."""
    level = logging.WARNING if event.status in _FAILED else logging.INFO
    logging.getLogger("crmbridge.run").log(
        level,
        event.headline,
        extra={
            "event": "run_ended",
            "run_id": event.run_id,
            "profile": event.profile,
            "kind": event.kind,
            "status": event.status,
            "counts": event.counts,
            "error": event.error,
        },
    )
    return notify(event, own, settings)


__all__ = ["SMTP_PASSWORD_ENV", "RunEvent", "notify", "post_webhook", "run_ended", "send_email"]
