"""A tiny QuickBooks client for the sandbox tests."""

from __future__ import annotations

import base64
from typing import Any

import httpx

from crmbridge.sandbox.quickbooks import QuickBooksSandbox


def basic(box: QuickBooksSandbox) -> str:
    raw = f"{box.client_id}:{box.client_secret}".encode()
    return "Basic " + base64.b64encode(raw).decode()


def refresh(client: httpx.Client, box: QuickBooksSandbox, token: str) -> httpx.Response:
    return client.post(
        "/oauth2/v1/tokens/bearer",
        data={"grant_type": "refresh_token", "refresh_token": token},
        headers={"Authorization": basic(box)},
    )


class Qbo:
    """``qbo.query("select ...")``, ``qbo.post("customer", {...})`` with a live token."""

    def __init__(self, client: httpx.Client, box: QuickBooksSandbox) -> None:
        self.client = client
        self.box = box
        answer = refresh(client, box, box.issue_refresh_token())
        assert answer.status_code == 200, answer.text
        self.token = answer.json()["access_token"]
        self.base = f"/v3/company/{box.realm_id}"

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        params = {"minorversion": "75", **kwargs.pop("params", {})}
        headers = {"Authorization": f"Bearer {self.token}", **kwargs.pop("headers", {})}
        return self.client.request(
            method, f"{self.base}/{path}", params=params, headers=headers, **kwargs
        )

    def query(self, text: str) -> httpx.Response:
        return self.request("GET", "query", params={"query": text})

    def rows(self, text: str, entity: str) -> list[dict[str, Any]]:
        response = self.query(text)
        assert response.status_code == 200, response.text
        return list(response.json()["QueryResponse"].get(entity, []))

    def post(self, entity: str, body: Any, **params: str) -> httpx.Response:
        return self.request("POST", entity.lower(), json=body, params=params)

    def ok(self, entity: str, body: Any, **params: str) -> dict[str, Any]:
        response = self.post(entity, body, **params)
        assert response.status_code == 200, response.text
        return dict(response.json()[entity])


def fault(response: httpx.Response) -> dict[str, Any]:
    """The first error of a fault answer."""
    body = response.json()
    error = (body.get("Fault") or body["fault"]).get("Error") or body["fault"]["error"]
    return dict(error[0])
