"""v4_1 login, sessions, server info and module metadata."""

from __future__ import annotations

import time

import httpx
from sugar_helpers import V4, md5

from crmbridge.sandbox.sugarcrm import SugarSandbox

INVALID_LOGIN = {
    "name": "Invalid Login",
    "number": 10,
    "description": "Login attempt failed please check the username and password",
}


def _login(v4: V4, user_auth: dict[str, str]) -> object:
    return v4.call(
        "login", {"user_auth": user_auth, "application_name": "t", "name_value_list": []}
    )


def test_login_with_md5_password_answers_session_and_user_values(client: httpx.Client) -> None:
    answer = _login(V4(client), {"user_name": "admin", "password": md5("admin")})
    assert isinstance(answer, dict)
    assert len(answer["id"]) == 26
    assert answer["module_name"] == "Users"
    values = answer["name_value_list"]
    assert values["user_id"] == {"name": "user_id", "value": "1"}
    assert values["user_is_admin"] == {"name": "user_is_admin", "value": True}
    assert values["user_default_dateformat"]["value"] == "m/d/Y"


def test_plain_password_fails_unless_encryption_plain(client: httpx.Client) -> None:
    v4 = V4(client)
    assert _login(v4, {"user_name": "admin", "password": "admin"}) == INVALID_LOGIN
    plain = _login(v4, {"user_name": "admin", "password": "admin", "encryption": "PLAIN"})
    assert isinstance(plain, dict)
    assert "id" in plain


def test_wrong_password_and_unknown_user_are_error_10(client: httpx.Client) -> None:
    v4 = V4(client)
    assert _login(v4, {"user_name": "admin", "password": md5("nope")}) == INVALID_LOGIN
    assert _login(v4, {"user_name": "ghost", "password": md5("admin")}) == INVALID_LOGIN
    assert _login(v4, {"user_name": "sally", "password": md5("sally")}) == INVALID_LOGIN


def test_positional_login_and_the_php_parameter_name_application_work(
    client: httpx.Client,
) -> None:
    v4 = V4(client)
    auth = {"user_name": "admin", "password": md5("admin")}
    assert "id" in v4.call("login", [auth, "t"])
    assert "id" in v4.call("login", {"user_auth": auth, "application": "t"})


def test_configured_users_log_in() -> None:
    box = SugarSandbox(users={"admin": "s3cret", "etl": "pw"}, accounts=1)
    with httpx.Client(transport=httpx.WSGITransport(app=box.wsgi_app), base_url="http://t") as http:
        v4 = V4(http)
        assert "id" in v4.call("login", [{"user_name": "etl", "password": md5("pw")}])
        assert v4.call("login", [{"user_name": "admin", "password": md5("admin")}])["number"] == 10
    box.close()


def test_session_lapses_after_the_idle_timeout() -> None:
    box = SugarSandbox(session_idle_timeout=0.2, accounts=1)
    with httpx.Client(transport=httpx.WSGITransport(app=box.wsgi_app), base_url="http://t") as http:
        v4 = V4(http)
        v4.login()
        count = {"session": v4.session, "module_name": "Accounts", "query": "", "deleted": 0}
        assert v4.call("get_entries_count", count) == {"result_count": "1"}
        time.sleep(0.12)
        assert v4.call("get_entries_count", count) == {"result_count": "1"}  # refreshed
        time.sleep(0.3)
        assert v4.call("get_entries_count", count)["number"] == 11
    box.close()


def test_logout_answers_null_and_ends_the_session(v4: V4) -> None:
    response = v4.post("logout", {"session": v4.session})
    assert response.text == "null"
    assert v4.call("get_user_id", [v4.session])["number"] == 11


def test_get_user_id(v4: V4) -> None:
    assert v4.call("get_user_id", [v4.session]) == "1"


def test_server_info_as_suitecrm_7_14_6(v4: V4) -> None:
    info = v4.call("get_server_info", [])
    assert list(info) == ["flavor", "version", "suitecrm_version", "gmt_time"]
    assert (info["flavor"], info["version"], info["suitecrm_version"]) == (
        "CE",
        "6.5.25",
        "7.14.6",
    )
    assert len(info["gmt_time"]) == 19


def test_server_info_of_a_plain_sugar() -> None:
    box = SugarSandbox(flavor="ENT", version="7.9.1.0", suitecrm_version=None, seed=False)
    with httpx.Client(transport=httpx.WSGITransport(app=box.wsgi_app), base_url="http://t") as http:
        info = V4(http).call("get_server_info", [])
    assert "suitecrm_version" not in info
    assert (info["flavor"], info["version"]) == ("ENT", "7.9.1.0")
    box.close()


def test_available_modules(v4: V4) -> None:
    default = v4.call("get_available_modules", [v4.session, "default"])
    keys = [m["module_key"] for m in default["modules"]]
    assert keys == ["Accounts", "Contacts", "Leads", "Opportunities", "Notes"]
    assert default["modules"][0]["acls"][0] == {"action": "edit", "access": True}
    every = v4.call("get_available_modules", [v4.session, "all"])
    assert "Users" in [m["module_key"] for m in every["modules"]]


def test_module_fields_types_lengths_options(v4: V4) -> None:
    answer = v4.call("get_module_fields", [v4.session, "Leads", []])
    fields = answer["module_fields"]
    assert answer["module_name"] == "Leads"
    assert fields["last_name"]["required"] == 1
    assert (fields["first_name"]["type"], fields["first_name"]["len"]) == ("varchar", 100)
    assert fields["lead_source"]["len"] == 100
    assert fields["title"]["len"] == 100
    assert fields["email1"]["len"] == 100
    assert fields["phone_work"] == fields["phone_work"] | {"type": "phone", "len": 100}
    assert fields["status"]["options"]["In Process"] == {
        "name": "In Process",
        "value": "In Process",
    }
    assert fields["first_name"]["options"] == []
    assert fields["external_id_c"]["type"] == "varchar"
    assert fields["lead_score_c"]["type"] == "int"
    assert "sync_key" not in fields
    assert answer["link_fields"]["email_addresses"]["type"] == "link"
    accounts = v4.call("get_module_fields", [v4.session, "Accounts", ["name", "contacts"]])
    assert list(accounts["module_fields"]) == ["name"]
    assert accounts["module_fields"]["name"]["len"] == 150
    assert accounts["link_fields"]["contacts"]["relationship"] == "accounts_contacts"


def test_module_fields_of_an_unknown_module_is_error_20(v4: V4) -> None:
    assert v4.call("get_module_fields", [v4.session, "Bugs"])["number"] == 20
