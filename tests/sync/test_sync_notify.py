"""``crmbridge sync`` logs how the sync ended and notifies as the sync profile says."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from tests.ops.test_notify import webhook
from tests.sync.conftest import SyncPair

from crmbridge.cli.app import main
from crmbridge.ops.logs import LOG_FORMAT_ENV, reset_logging

__all__ = ["webhook"]  # the fixture, used here


def test_a_sync_run_calls_the_webhook_and_logs_json(
    pair: SyncPair,
    webhook: tuple[list[dict[str, Any]], str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("CRMBRIDGE_HOME", str(tmp_path / "home"))
    monkeypatch.delenv(LOG_FORMAT_ENV, raising=False)
    received, url = webhook
    pair.add_a(name="Acme", phone="1", notes="x", vat="DE1")
    path = pair.write_profile(extra=f"notify: {{on: [always], webhook: '{url}'}}\n")
    args = ["--log-format", "json", "sync", str(path), "--accept-links"]
    try:
        with pytest.raises(SystemExit) as info:
            main([*args, "--state-url", pair.state.url, "-o", str(tmp_path / "out")])
    finally:
        reset_logging()
    assert info.value.code == 0
    (body,) = received
    assert (body["kind"], body["status"]) == ("sync", "succeeded")
    assert body["profile"] == "suppliers.sync"
    lines = [json.loads(x) for x in capsys.readouterr().err.splitlines() if x.startswith("{")]
    assert any(x.get("event") == "run_ended" and x["kind"] == "sync" for x in lines)
