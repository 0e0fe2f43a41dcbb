"""``crmbridge serve --cert --key`` serves HTTPS, and its session cookie is Secure."""

from __future__ import annotations

import ssl
from pathlib import Path

import httpx
import pytest
from tests.web.serving import serve

from crmbridge.sandbox.salesforce.tls import ensure_certificates

pytestmark = pytest.mark.slow


def test_https_with_the_given_certificate(tmp_path: Path) -> None:
    certs = ensure_certificates(tmp_path / "tls", prefix="web")
    folder = tmp_path / "work"
    folder.mkdir()
    extra = ["--cert", str(certs.cert_file), "--key", str(certs.key_file)]
    trusted = ssl.create_default_context(cafile=str(certs.ca_file))
    with serve(folder, tmp_path / "home", extra, verify=trusted) as served:
        assert served.url.startswith("https://")
        with httpx.Client(verify=trusted) as client:
            login = client.get(f"{served.url}/login", params={"token": served.token})
            assert login.status_code == 303
            cookie = login.headers["set-cookie"]
            assert "crmbridge_session=" in cookie
            assert "Secure" in cookie
            assert "HttpOnly" in cookie
            assert "SameSite=strict" in cookie
            assert client.get(f"{served.url}/api/overview").status_code == 200
