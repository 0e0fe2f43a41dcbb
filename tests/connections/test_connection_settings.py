from __future__ import annotations

from pydantic import SecretStr

from crmbridge.connections import ResolveType, redact, secret_fields, settings_from_env


def test_secret_fields_are_the_secretstr_ones(resolve: ResolveType) -> None:
    assert secret_fields(resolve("demo").settings_model) == ["password", "api_token"]
    assert secret_fields(resolve("plain").settings_model) == ["token"]


def test_redact_replaces_every_occurrence_longest_first() -> None:
    text = "login sync/pa55 failed: pa55word rejected, pa55 again"
    assert redact(text, ["pa55", SecretStr("pa55word"), ""]) == (
        "login sync/*** failed: *** rejected, *** again"
    )
    assert redact("a.b*c", ["b*"]) == "a.***c"
    assert redact("nothing secret", []) == "nothing secret"


def test_settings_from_env_reads_only_secret_fields(resolve: ResolveType) -> None:
    environ = {
        "CRMBRIDGE_SECRET_PASSWORD": "pw",
        "CRMBRIDGE_SECRET_API_TOKEN": "tok",
        "CRMBRIDGE_SECRET_HOST": "not a secret field",
        "PASSWORD": "no prefix",
    }
    model = resolve("demo").settings_model
    assert settings_from_env(model, "CRMBRIDGE_SECRET_", environ=environ) == {
        "password": "pw",
        "api_token": "tok",
    }
    assert settings_from_env(model, "CRM_", environ=environ) == {}


def test_public_names() -> None:
    import crmbridge.connections as connections

    assert all(hasattr(connections, name) for name in connections.__all__)
    expected = {"Connection", "ConnectionStore", "KeySource", "inline_connection", "redact"}
    assert expected | {"secret_fields", "settings_from_env"} <= set(connections.__all__)
