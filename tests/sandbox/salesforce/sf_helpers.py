"""A tiny client for the Salesforce sandbox tests."""

from __future__ import annotations

from typing import Any

import httpx

from crmbridge.sandbox.salesforce import DEFAULT_USER, SalesforceSandbox

V = "/services/data/v59.0"


class Rest:
    """``rest.get("query", params={"q": ...})`` with the token of the last ``login``."""

    def __init__(self, client: httpx.Client, sandbox: SalesforceSandbox) -> None:
        self.client = client
        self.sandbox = sandbox
        self.token = ""

    def token_request(self, **form: str) -> httpx.Response:
        return self.client.post("/services/oauth2/token", data=form)

    def login(self, username: str = DEFAULT_USER, password: str = "admin") -> str:
        answer = self.token_request(
            grant_type="password",
            client_id=self.sandbox.consumer_key,
            client_secret=self.sandbox.consumer_secret,
            username=username,
            password=password,
        )
        assert answer.status_code == 200, answer.text
        self.token = answer.json()["access_token"]
        return self.token

    def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token}", **kwargs.pop("headers", {})}
        return self.client.request(method, f"{V}/{path}", headers=headers, **kwargs)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.call("GET", path, **kwargs)

    def query(self, soql: str, *, all: bool = False, **kwargs: Any) -> httpx.Response:
        return self.get("queryAll" if all else "query", params={"q": soql}, **kwargs)

    def records(self, soql: str, *, all: bool = False) -> list[dict[str, Any]]:
        answer = self.query(soql, all=all)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        out = list(body["records"])
        while not body["done"]:
            body = self.client.get(
                body["nextRecordsUrl"], headers={"Authorization": f"Bearer {self.token}"}
            ).json()
            out += body["records"]
        return out

    def error(self, answer: httpx.Response) -> tuple[int, str, str]:
        """(status, errorCode, message) of an error answer."""
        item = answer.json()[0]
        return answer.status_code, item["errorCode"], item["message"]
