"""Notifications: a real SMTP server (aiosmtpd) and a real HTTP server, both in-process."""

from __future__ import annotations

import email
import json
import logging
import shutil
import socket
import threading
from collections.abc import Iterator
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from crmbridge.cli.app import main
from crmbridge.ops.logs import LOG_FORMAT_ENV, reset_logging
from crmbridge.ops.notify import RunEvent, notify
from crmbridge.profiles.ops_model import Notify, NotifyOn, Settings, Smtp


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.recipients: list[list[str]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.recipients.append(list(envelope.rcpt_tos))
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[Mailbox, int]]:
    from aiosmtpd.controller import Controller

    box, port = Mailbox(), _free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield box, port
    finally:
        controller.stop()


@pytest.fixture
def webhook() -> Iterator[tuple[list[dict[str, Any]], str]]:
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append(json.loads(body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield received, f"http://127.0.0.1:{server.server_address[1]}/hook"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("CRMBRIDGE_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("CRMBRIDGE_STATE_URL", raising=False)
    monkeypatch.delenv(LOG_FORMAT_ENV, raising=False)
    (tmp_path / "home").mkdir()
    yield tmp_path / "home"
    reset_logging()


FAILED = RunEvent(
    profile="leads",
    kind="transfer",
    run_id=7,
    status="failed",
    counts={"created": 3},
    error="the CRM did not answer",
)
REJECTS = RunEvent(
    profile="leads",
    kind="transfer",
    run_id=8,
    status="finished_with_rejects",
    counts={"created": 5, "rejected": 2},
    error_file="/tmp/runs/8-leads/error.csv",
)
SUCCEEDED = RunEvent(profile="leads", kind="transfer", run_id=9, status="succeeded")


def test_which_runs_each_setting_wants() -> None:
    failure, rejects = [NotifyOn.FAILURE], [NotifyOn.REJECTS]
    assert FAILED.wanted_by(failure)
    assert not FAILED.wanted_by(rejects)
    assert REJECTS.wanted_by(rejects)
    assert not REJECTS.wanted_by(failure)
    assert not SUCCEEDED.wanted_by([NotifyOn.FAILURE, NotifyOn.REJECTS])
    assert SUCCEEDED.wanted_by([NotifyOn.ALWAYS])
    interrupted = RunEvent(profile="x", kind="sync", run_id=1, status="interrupted")
    assert interrupted.wanted_by(failure)


def test_a_failed_run_is_e_mailed_through_the_smtp_server(smtp: tuple[Mailbox, int]) -> None:
    box, port = smtp
    settings = Settings(smtp=Smtp(host="127.0.0.1", port=port, sender="crmbridge@example.com"))
    rule = Notify(email=["ops@example.com", "dev@example.com"])
    assert notify(FAILED, rule, settings) == ["email to ops@example.com, dev@example.com"]
    (message,) = box.messages
    assert box.recipients == [["ops@example.com", "dev@example.com"]]
    assert message["Subject"] == "crmbridge: run 7 of leads failed"
    assert message["From"] == "crmbridge@example.com"
    body = message.get_payload()
    assert "error: the CRM did not answer" in body
    assert "details: crmbridge show 7" in body
    assert notify(SUCCEEDED, rule, settings) == []  # on failure and rejects only (default)
    assert len(box.messages) == 1


def test_rejected_records_call_the_webhook_with_the_run_as_json(
    webhook: tuple[list[dict[str, Any]], str],
) -> None:
    received, url = webhook
    assert notify(REJECTS, Notify(on=[NotifyOn.REJECTS], webhook=url), Settings()) == [
        f"webhook {url}"
    ]
    (body,) = received
    assert body["event"] == "run_ended"
    assert body["summary"] == "run 8 of leads rejected 2 records"
    assert body["status"] == "finished_with_rejects"
    assert body["counts"] == {"created": 5, "rejected": 2}
    assert body["error_file"] == "/tmp/runs/8-leads/error.csv"


def test_the_global_setting_applies_to_profiles_without_their_own(
    webhook: tuple[list[dict[str, Any]], str],
) -> None:
    received, url = webhook
    settings = Settings(notify=Notify(webhook=url))
    assert notify(FAILED, None, settings) == [f"webhook {url}"]
    assert notify(FAILED, Notify(on=[NotifyOn.REJECTS], webhook=url), settings) == []
    assert len(received) == 1


def test_a_notification_that_cannot_be_sent_is_a_warning_only(
    caplog: pytest.LogCaptureFixture,
) -> None:
    dead = _free_port()
    settings = Settings(smtp=Smtp(host="127.0.0.1", port=dead))
    rule = Notify(email=["ops@example.com"], webhook=f"http://127.0.0.1:{dead}/hook")
    with caplog.at_level(logging.WARNING, "crmbridge.notify"):
        assert notify(FAILED, rule, settings) == []
    assert "could not e-mail ops@example.com about run 7 of leads failed" in caplog.text
    assert f"could not call the webhook http://127.0.0.1:{dead}/hook" in caplog.text


def test_a_run_notifies_as_its_profile_says(
    home: Path,
    tmp_path: Path,
    smtp: tuple[Mailbox, int],
    webhook: tuple[list[dict[str, Any]], str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    box, port = smtp
    received, url = webhook
    (home / "settings.yaml").write_text(f"smtp: {{host: 127.0.0.1, port: {port}}}\n")
    folder = tmp_path / "example"
    with resources.as_file(resources.files("crmbridge") / "examples") as path:
        shutil.copytree(path, folder, ignore=shutil.ignore_patterns("__*"))
    profile = folder / "contacts-to-sqlite.yaml"
    profile.write_text(
        profile.read_text()
        + f"\nnotify: {{on: [always], email: [ops@example.com], webhook: '{url}'}}\n"
    )
    with pytest.raises(SystemExit) as info:
        main(["run", str(profile), "--no-progress"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "notified: email to ops@example.com" in out
    assert f"notified: webhook {url}" in out
    (message,) = box.messages
    assert message["Subject"].startswith("crmbridge: run 1 of contacts-to-sqlite")
    assert received[0]["counts"]["created"] == 134
    with pytest.raises(SystemExit):  # a dry run notifies nobody
        main(["run", str(profile), "--no-progress", "--dry-run"])
    assert len(box.messages) == 1


def test_a_wrong_settings_file_is_one_clear_line(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (home / "settings.yaml").write_text("smtp: {port: many}\n")
    with pytest.raises(SystemExit) as info:
        main(["history"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "settings.yaml: smtp.port:" in err
