"""Connector settings: which fields are secret, validating them, keeping secrets out of text.

A connector's ``settings_model`` marks a secret by typing the field ``pydantic.SecretStr``
(or ``SecretStr | None``). Secrets must be top-level fields of the model: the connection
store encrypts exactly those.
"""

from __future__ import annotations

import os
import typing
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, SecretStr, ValidationError
from pydantic_core import ErrorDetails

from crmbridge.connectors.base import ConnectorSettings
from crmbridge.core.schema import suggest
from crmbridge.errors import ConfigError, ErrorContext, redact

#: prefix of the environment variables that carry secret settings: CRMBRIDGE_SECRET_PASSWORD
SECRET_ENV_PREFIX = "CRMBRIDGE_SECRET_"


def _is_secret(annotation: Any) -> bool:
    if isinstance(annotation, type) and issubclass(annotation, SecretStr):
        return True
    return any(_is_secret(arg) for arg in typing.get_args(annotation))


def secret_fields(model: type[BaseModel]) -> list[str]:
    """Names of the fields of ``model`` typed ``SecretStr`` (also inside ``| None``), in order."""
    return [name for name, info in model.model_fields.items() if _is_secret(info.annotation)]


def secret_values(settings: BaseModel | Mapping[str, Any], model: type[BaseModel]) -> list[str]:
    """The plain values of the secret fields of ``settings`` (a model instance or raw input)."""
    raw = settings if isinstance(settings, Mapping) else dict(settings)
    values: list[str] = []
    for name in secret_fields(model):
        value = raw.get(name)
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        if value is not None and str(value) != "":
            values.append(str(value))
    return values


def settings_from_env(
    model: type[BaseModel], prefix: str, *, environ: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Secret settings of ``model`` found in environment variables named ``prefix + FIELD``.

    The variable of a secret field is the prefix followed by the field name in upper case:
    with ``prefix="CRMBRIDGE_SECRET_"``, field ``password`` is read from
    ``CRMBRIDGE_SECRET_PASSWORD`` and ``api_key`` from ``CRMBRIDGE_SECRET_API_KEY``.
    Only secret fields are read; unset variables are left out.
    """
    env = os.environ if environ is None else environ
    found: dict[str, str] = {}
    for name in secret_fields(model):
        variable = prefix + name.upper()
        if variable in env:
            found[name] = env[variable]
    return found


def validate_settings(
    model: type[ConnectorSettings], settings: Mapping[str, Any], *, connection: str, type_name: str
) -> ConnectorSettings:
    """``settings`` as a ``model`` instance; every problem at once in one ConfigError.

    The message names the connection and each field at fault, never an input value, and
    any secret value that a validator put in its message is replaced by ``***``.
    """
    try:
        return model.model_validate(dict(settings))
    except ValidationError as err:
        problems = [_describe(e, model) for e in err.errors(include_url=False, include_input=False)]
        message = f"invalid settings for a {type_name!r} connection:\n" + "\n".join(
            f"  {p}" for p in problems
        )
        raise ConfigError(
            redact(message, secret_values(settings, model)),
            context=ErrorContext(connection=connection),
        ) from None


def _describe(error: ErrorDetails, model: type[BaseModel]) -> str:
    where = ".".join(str(part) for part in error["loc"]) or "settings"
    if error["type"] == "extra_forbidden" and len(error["loc"]) == 1:
        close = suggest(where, model.model_fields)
        hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        return f"{where}: unknown setting{hint}"
    if error["type"] == "missing":
        return f"{where}: required, not given"
    return f"{where}: {error['msg']}"
