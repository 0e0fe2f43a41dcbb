"""How ``crmbridge serve`` is set up: where it listens, how people log in, where profiles are."""

from __future__ import annotations

import ipaddress
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from crmbridge.errors import ConfigError

#: environment variable holding the password that logs in (instead of the printed token)
PASSWORD_ENV = "CRMBRIDGE_WEB_PASSWORD"


@dataclass(frozen=True)
class WebConfig:
    """Settings of one web server.

    ``folder``: where the profiles (``*.yaml``) are listed, opened and saved. ``token``: the
    login token printed at start; ``password``: when set, it logs in too (and the token is
    still accepted by scripts as a bearer token). ``state_url``: the run history database
    (default: SQLite in the crmbridge home)."""

    folder: Path
    host: str = "127.0.0.1"
    port: int = 8765
    token: str = field(default_factory=lambda: secrets.token_urlsafe(18))
    password: str | None = None
    state_url: str | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    insecure_public: bool = False

    @property
    def https(self) -> bool:
        return self.cert_file is not None

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.https else 'http'}://{host}:{self.port}"

    def check(self) -> None:
        """A host other than loopback needs HTTPS (certificate and key) or, knowingly,
        ``insecure_public``: the login and the secrets typed in would cross the network."""
        if (self.cert_file is None) != (self.key_file is None):
            raise ConfigError("give both --cert and --key for HTTPS")
        for path in (self.cert_file, self.key_file):
            if path is not None and not path.is_file():
                raise ConfigError(f"{path}: no such file")
        if not is_loopback(self.host) and not self.https and not self.insecure_public:
            raise ConfigError(
                f"--host {self.host} makes the UI reachable from other machines: give --cert "
                f"and --key for HTTPS, or --insecure-public to serve plain HTTP anyway"
            )
        if not self.folder.is_dir():
            raise ConfigError(f"{self.folder}: no such folder (--dir)")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
