"""v4_1 transport: form fields, parameter binding, error objects, PHP text answers."""

from __future__ import annotations

import json

import httpx
from sugar_helpers import V4, V4_PATH, md5


def test_json_answer_is_compact_php_json_with_escaped_slashes(v4: V4) -> None:
    response = v4.post("get_server_info", [])
    assert response.headers["content-type"].startswith("application/json")
    assert response.text.startswith('{"flavor":"CE","version":"6.5.25","suitecrm_version":')
    site = v4.set_entry("Accounts", {"name": "A", "website": "http://a.example.com/x"})
    raw = v4.post(
        "get_entry",
        {
            "session": v4.session,
            "module_name": "Accounts",
            "id": site["id"],
            "select_fields": ["website"],
            "link_name_to_fields_array": [],
        },
    )
    assert "http:\\/\\/a.example.com\\/x" in raw.text


def test_without_response_type_the_answer_is_php_print_r(client: httpx.Client) -> None:
    form = {"method": "get_server_info", "input_type": "JSON", "rest_data": "[]"}
    response = client.post(V4_PATH, data=form)
    assert response.status_code == 200
    assert response.text.startswith("Array\n(\n    [flavor] => CE\n    [version] => 6.5.25\n")
    assert response.text.endswith(")\n")


def test_print_r_nests_arrays_like_php(v4: V4) -> None:
    form = {"input_type": "JSON", "rest_data": json.dumps([v4.session, "Accounts", ""])}
    response = v4.client.post(V4_PATH, data={"method": "get_entries_count", **form})
    assert response.text == f"Array\n(\n    [result_count] => {40}\n)\n"
    login = v4.client.post(
        V4_PATH,
        data={
            "method": "login",
            "input_type": "JSON",
            "rest_data": json.dumps([{"user_name": "admin", "password": md5("admin")}]),
        },
    )
    assert "    [name_value_list] => Array\n        (\n            [user_id] => Array\n" in (
        login.text
    )
    assert "                    [value] => 1\n                )\n\n" in login.text


def test_errors_without_response_type_are_http_500_html(client: httpx.Client) -> None:
    form = {"method": "get_entries_count", "input_type": "JSON", "rest_data": '["bad"]'}
    response = client.post(V4_PATH, data=form)
    assert response.status_code == 500
    assert response.text == (
        "<br>500 Internal Server Error <br>11: Invalid Session ID<br>The session ID is invalid"
    )


def test_positional_rest_data_works(v4: V4) -> None:
    answer = v4.call("get_entries_count", [v4.session, "Accounts", "", 0])
    assert answer == {"result_count": "40"}


def test_named_parameters_may_come_in_any_order(v4: V4) -> None:
    answer = v4.call(
        "get_entries_count", {"module_name": "Accounts", "session": v4.session, "query": ""}
    )
    assert answer == {"result_count": "40"}


def test_an_unknown_parameter_name_is_http_500_with_an_empty_body(v4: V4) -> None:
    response = v4.post(
        "get_entry_list",
        {"session": v4.session, "module": "Accounts", "query": "", "order_by": ""},
    )
    assert response.status_code == 500
    assert response.content == b""


def test_a_missing_required_parameter_is_http_500_with_an_empty_body(v4: V4) -> None:
    response = v4.post("login", {"application_name": "x"})
    assert (response.status_code, response.content) == (500, b"")


def test_unknown_method_answers_number_minus_one_as_a_string(v4: V4) -> None:
    response = v4.post("no_such_method", [])
    assert response.status_code == 200
    assert response.json() == {
        "name": "An Undefined Error - invalid_call occurred",
        "number": "-1",
        "description": "There is no error definition for invalid_call",
    }


def test_errors_are_http_200_objects_with_name_number_description(v4: V4) -> None:
    response = v4.post("get_entries_count", {"session": "nope", "module_name": "Accounts"})
    assert response.status_code == 200
    assert response.json() == {
        "name": "Invalid Session ID",
        "number": 11,
        "description": "The session ID is invalid",
    }


def test_unknown_module_is_error_20(v4: V4) -> None:
    answer = v4.call("get_entries_count", {"session": v4.session, "module_name": "Nope"})
    assert answer["number"] == 20
    assert answer["name"] == "Module Does Not Exist"


def test_without_input_type_json_php_calls_the_method_without_arguments(v4: V4) -> None:
    form = {"method": "get_entries_count", "response_type": "JSON", "rest_data": "[]"}
    assert v4.client.post(V4_PATH, data=form).status_code == 500
    info = v4.client.post(V4_PATH, data={"method": "get_server_info", "response_type": "JSON"})
    assert info.json()["flavor"] == "CE"


def test_invalid_json_binds_null_to_the_first_parameter(v4: V4) -> None:
    assert v4.post("get_entries_count", "{not json").json()["number"] == 11


def test_fields_may_come_in_the_query_string(v4: V4) -> None:
    params = {
        "method": "get_server_info",
        "input_type": "JSON",
        "response_type": "JSON",
        "rest_data": "[]",
    }
    assert v4.client.get(V4_PATH, params=params).json()["version"] == "6.5.25"


def test_other_paths_are_404(client: httpx.Client) -> None:
    assert client.get("/index.php").status_code == 404
