"""Small clients for the sandbox tests (imported by conftest and the test modules)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import httpx

V4_PATH = "/service/v4_1/rest.php"


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


class V4:
    """A tiny v4_1 client: ``v4.call("get_entry_list", {...})`` returns the decoded answer."""

    def __init__(self, client: httpx.Client) -> None:
        self.client = client
        self.session = ""

    def post(self, method: str, rest_data: Any, **fields: str) -> httpx.Response:
        form = {"method": method, "input_type": "JSON", "response_type": "JSON"}
        form.update(fields)
        text = rest_data if isinstance(rest_data, str) else json.dumps(rest_data)
        return self.client.post(V4_PATH, data={**form, "rest_data": text})

    def call(self, method: str, rest_data: Any) -> Any:
        response = self.post(method, rest_data)
        assert response.status_code == 200, response.text
        return response.json()

    def login(self, user: str = "admin", password: str = "admin") -> str:
        answer = self.call(
            "login",
            {
                "user_auth": {"user_name": user, "password": md5(password)},
                "application_name": "tests",
                "name_value_list": [],
            },
        )
        self.session = answer["id"]
        return self.session

    def entry_list(self, module: str, query: str = "", **params: Any) -> Any:
        data = {
            "session": self.session,
            "module_name": module,
            "query": query,
            "order_by": params.pop("order_by", ""),
            "offset": params.pop("offset", 0),
            "select_fields": params.pop("select_fields", []),
            "link_name_to_fields_array": params.pop("link_name_to_fields_array", []),
            "max_results": params.pop("max_results", 0),
            "deleted": params.pop("deleted", 0),
            "favorites": False,
        }
        assert not params, params
        return self.call("get_entry_list", data)

    def set_entry(self, module: str, values: dict[str, Any]) -> Any:
        nvl = [{"name": k, "value": v} for k, v in values.items()]
        return self.call(
            "set_entry",
            {"session": self.session, "module_name": module, "name_value_list": nvl},
        )


class Rest:
    """A tiny v10 client with a token: ``rest.get("Accounts", params={...})``."""

    def __init__(self, client: httpx.Client, version: str = "v11") -> None:
        self.client = client
        self.version = version
        self.token = ""

    def login(self, user: str = "admin", password: str = "admin", platform: str = "t") -> None:
        response = self.client.post(
            f"/rest/{self.version}/oauth2/token",
            json={
                "grant_type": "password",
                "client_id": "sugar",
                "client_secret": "",
                "username": user,
                "password": password,
                "platform": platform,
            },
        )
        assert response.status_code == 200, response.text
        self.token = response.json()["access_token"]

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"OAuth-Token": self.token} if self.token else {}
        url = path if path.startswith("/") else f"/rest/{self.version}/{path}"
        return self.client.request(method, url, headers=headers, **kwargs)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, **kwargs)
