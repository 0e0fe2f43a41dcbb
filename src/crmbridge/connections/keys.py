"""Where the key that encrypts connection secrets comes from.

A key is a Fernet key (32 random bytes, URL-safe base64). :func:`default_key_source` picks,
in this order:

1. a passphrase, when ``$CRMBRIDGE_PASSPHRASE`` is set: the key is derived from it with
   scrypt and a random salt stored in ``<home>/passphrase.salt``;
2. the key file ``<home>/secret.key``, when it exists;
3. the OS keyring (the ``keyring`` package), when it has a usable backend;
4. otherwise the key file ``<home>/secret.key``, created (mode 0600) with the first secret.

An existing key file wins over the keyring so that secrets stay readable when a keyring
backend appears later (e.g. after installing ``crmbridge[keyring]``).
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from cryptography.fernet import Fernet
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from crmbridge.connections._files import check_private, create_private_file_once
from crmbridge.errors import ConfigError

PASSPHRASE_ENV = "CRMBRIDGE_PASSPHRASE"
KEY_FILE_NAME = "secret.key"
SALT_FILE_NAME = "passphrase.salt"
KEYRING_SERVICE = "crmbridge"


class KeySource(Protocol):
    """Provides the Fernet key of a connection store."""

    def describe(self) -> str:
        """Where the key comes from, for messages (never the key itself)."""
        ...

    def load_key(self, *, create: bool) -> bytes | None:
        """The key; when there is none yet, a new one if ``create`` else None."""
        ...


class KeyFileKeySource:
    """A key kept in a file readable by its owner only (``chmod 600``)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def describe(self) -> str:
        return f"the key file {self.path}"

    def load_key(self, *, create: bool) -> bytes | None:
        if self.path.exists():
            check_private(self.path, "key file")
            key = self.path.read_bytes().strip()
        elif create:
            key = create_private_file_once(self.path, Fernet.generate_key() + b"\n").strip()
        else:
            return None
        _check_key(key, self.describe())
        return key

    def __repr__(self) -> str:
        return f"KeyFileKeySource({str(self.path)!r})"


class PassphraseKeySource:
    """A key derived from a passphrase with scrypt; the random salt is kept in ``salt_path``."""

    #: scrypt cost parameters for new salt files (about 0.1 s and 32 MiB per derivation)
    N, R, P = 2**15, 8, 1

    def __init__(self, passphrase: str, salt_path: Path) -> None:
        if not passphrase:
            raise ConfigError(f"the passphrase is empty; set {PASSPHRASE_ENV} to a passphrase")
        self._passphrase = passphrase
        self.salt_path = salt_path
        self._key: bytes | None = None

    def describe(self) -> str:
        return f"the passphrase (with the salt in {self.salt_path})"

    def load_key(self, *, create: bool) -> bytes | None:
        if self._key is not None:
            return self._key
        if self.salt_path.exists():
            raw = self.salt_path.read_bytes()
        elif create:
            params = {"kdf": "scrypt", "n": self.N, "r": self.R, "p": self.P}
            params["salt"] = base64.b64encode(secrets.token_bytes(16)).decode()
            raw = create_private_file_once(self.salt_path, json.dumps(params).encode() + b"\n")
        else:
            return None
        self._key = self._derive(raw)
        return self._key

    def _derive(self, raw: bytes) -> bytes:
        try:
            params = json.loads(raw)
            kdf = Scrypt(
                salt=base64.b64decode(params["salt"], validate=True),
                length=32,
                n=int(params["n"]),
                r=int(params["r"]),
                p=int(params["p"]),
            )
        except (ValueError, KeyError, TypeError):
            raise ConfigError(
                f"the salt file {self.salt_path} is damaged; restore it from a backup "
                f"(without it the secrets cannot be decrypted)"
            ) from None
        return base64.urlsafe_b64encode(kdf.derive(self._passphrase.encode()))

    def __repr__(self) -> str:
        return f"PassphraseKeySource(passphrase='***', salt_path={str(self.salt_path)!r})"


class KeyringKeySource:
    """A key kept in the OS keyring (macOS Keychain, Windows Credential Locker, Secret Service).

    ``backend`` is a ``keyring`` backend; None means the one ``keyring`` chooses.
    """

    def __init__(self, home: Path, backend: Any = None) -> None:
        self.username = f"secret-key:{home.resolve()}"
        self._backend = backend

    def _keyring(self) -> Any:
        if self._backend is None:
            import keyring

            self._backend = keyring.get_keyring()
        return self._backend

    def describe(self) -> str:
        backend = type(self._keyring()).__name__
        return f"the OS keyring ({backend}, service {KEYRING_SERVICE!r}, entry {self.username!r})"

    def load_key(self, *, create: bool) -> bytes | None:
        backend = self._keyring()
        try:
            stored = backend.get_password(KEYRING_SERVICE, self.username)
            if stored is None and create:
                backend.set_password(KEYRING_SERVICE, self.username, Fernet.generate_key().decode())
                stored = backend.get_password(KEYRING_SERVICE, self.username)
        except Exception as err:  # keyring backends raise many kinds of errors
            raise ConfigError(
                f"the OS keyring failed ({type(err).__name__}); set {PASSPHRASE_ENV} to use a "
                f"passphrase instead, or create the key file {KEY_FILE_NAME} in the crmbridge home"
            ) from None
        if stored is None:
            return None
        key = str(stored).encode()
        _check_key(key, self.describe())
        return key


def keyring_usable(backend: Any = None) -> bool:
    """Does ``backend`` (default: keyring's choice) really store secrets (not fail/null)?"""
    try:
        if backend is None:
            import keyring

            backend = keyring.get_keyring()
        return float(backend.priority) > 0
    except Exception:  # keyring missing or a backend that cannot say: not usable
        return False


def default_key_source(
    home: Path, *, environ: Mapping[str, str] | None = None, keyring_backend: Any = None
) -> KeySource:
    """The key source for the store in ``home`` (see the module docstring for the order)."""
    env = os.environ if environ is None else environ
    passphrase = env.get(PASSPHRASE_ENV, "")
    if passphrase:
        return PassphraseKeySource(passphrase, home / SALT_FILE_NAME)
    key_file = home / KEY_FILE_NAME
    if not key_file.exists() and keyring_usable(keyring_backend):
        return KeyringKeySource(home, keyring_backend)
    return KeyFileKeySource(key_file)


def _check_key(key: bytes, where: str) -> None:
    try:
        Fernet(key)
    except ValueError:
        raise ConfigError(
            f"{where} does not hold a valid key (32 URL-safe base64-encoded bytes)"
        ) from None
