"""Logging in: an OAuth2 access token from the username-password or the JWT bearer flow.

Neither flow gives a refresh token; when a token expires (``INVALID_SESSION_ID``) the
connector logs in again the same way.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import jwt
import requests

from crmbridge.connectors.salesforce.settings import SalesforceSettings
from crmbridge.errors import ConfigError, ConnectionFailedError, ErrorContext, redact

JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
#: how long a JWT assertion is valid (Salesforce accepts at most a few minutes)
JWT_LIFETIME = 180


@dataclass(frozen=True)
class Token:
    access_token: str
    instance_url: str
    user_url: str = ""


def _secrets(settings: SalesforceSettings) -> list[str]:
    return [
        settings.password.get_secret_value(),
        settings.security_token.get_secret_value(),
        settings.client_secret.get_secret_value(),
        settings.private_key.get_secret_value(),
    ]


def _private_key(settings: SalesforceSettings, base_dir: Path, context: ErrorContext) -> str:
    if settings.private_key.get_secret_value():
        return settings.private_key.get_secret_value()
    path = Path(settings.private_key_file or "")
    path = path if path.is_absolute() else base_dir / path
    try:
        return path.read_text()
    except OSError as err:
        raise ConfigError(
            f"cannot read private_key_file {path}: {err.strerror}", context=context
        ) from None


def token_form(
    settings: SalesforceSettings, base_dir: Path, context: ErrorContext
) -> dict[str, str]:
    """The body of the token request for the configured flow."""
    if settings.auth == "password":
        return {
            "grant_type": "password",
            "client_id": settings.client_id,
            "client_secret": settings.client_secret.get_secret_value(),
            "username": settings.username,
            "password": settings.password.get_secret_value()
            + settings.security_token.get_secret_value(),
        }
    claims = {
        "iss": settings.client_id,
        "sub": settings.username,
        "aud": (settings.audience or settings.login_url).rstrip("/"),
        "exp": int(time.time()) + JWT_LIFETIME,
    }
    key = _private_key(settings, base_dir, context)
    try:
        assertion = jwt.encode(claims, key, algorithm="RS256")
    except (ValueError, TypeError, jwt.PyJWTError) as err:
        raise ConfigError(
            f"the private key cannot sign the JWT ({type(err).__name__}): is it an RSA key "
            "in PEM form?",
            context=context,
        ) from None
    return {"grant_type": JWT_GRANT, "assertion": assertion}


def login(
    session: requests.Session,
    settings: SalesforceSettings,
    *,
    base_dir: Path,
    timeout: float,
    context: ErrorContext,
) -> Token:
    """A fresh access token, or a ConnectionFailedError saying why there is none."""
    form = token_form(settings, base_dir, context)
    try:
        response = session.post(settings.token_url, data=form, timeout=timeout)
    except requests.RequestException as err:
        text = redact(str(err), _secrets(settings))
        raise ConnectionFailedError(
            f"cannot reach {settings.token_url}: {text}", context=context
        ) from None
    try:
        body = response.json()
    except ValueError:
        body = {}
    if response.status_code != 200 or not isinstance(body, dict) or "access_token" not in body:
        error = str(body.get("error", "")) if isinstance(body, dict) else ""
        description = str(body.get("error_description", "")) if isinstance(body, dict) else ""
        hint = _hint(error, description, settings)
        detail = redact(f"{error}: {description}".strip(": "), _secrets(settings))
        raise ConnectionFailedError(
            f"Salesforce refused the {settings.auth} login of {settings.username!r} "
            f"(HTTP {response.status_code} {detail or response.reason}){hint}",
            context=context,
        )
    return Token(str(body["access_token"]), str(body["instance_url"]), str(body.get("id", "")))


def _hint(error: str, description: str, settings: SalesforceSettings) -> str:
    if error == "invalid_client_id":
        return "; check client_id (the connected app's consumer key)"
    if error == "invalid_client":
        return "; check client_secret (the connected app's consumer secret)"
    if error == "invalid_grant" and description == "authentication failure":
        return (
            "; check username and password, and security_token if the org asks for one "
            "(it is appended to the password)"
        )
    if error == "invalid_grant" and "audience" in description:
        return f"; the JWT audience {settings.audience or settings.login_url!r} is not accepted"
    if error == "invalid_grant" and "approved" in description:
        return "; the user must be pre-authorised for the connected app (JWT bearer)"
    return ""
