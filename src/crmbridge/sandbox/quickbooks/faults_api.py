"""QuickBooks error answers: ``{"Fault": {"Error": [...], "type": ...}, "time": ...}``.

Codes the sandbox answers (see docs/sandbox.md): 120 authorization (wrong company), 500
unsupported operation, 610 object not found (also an inactive reference), 2010 unsupported
property, 2020 required value missing, 2050 text too long, 2170 invalid enumeration, 2500
invalid reference id, 3001 throttled, 3200 authentication, 4000 query parse error, 4001
invalid query, 5010 stale object, 6000 business rule, 6070 amount mismatch, 6240 duplicate
name.
"""

from __future__ import annotations

from typing import Any


class ApiFault(Exception):  # noqa: N818 - named as the API names it
    """A fault the API answers with ``status`` (400 for a validation fault)."""

    def __init__(
        self,
        code: str,
        message: str,
        detail: str,
        *,
        status: int = 400,
        element: str | None = None,
        type: str = "ValidationFault",
    ) -> None:
        super().__init__(f"{code} {message}: {detail}")
        self.code = code
        self.message = message
        self.detail = detail
        self.status = status
        self.element = element
        self.type = type

    def fault(self) -> dict[str, Any]:
        error: dict[str, Any] = {"Message": self.message, "Detail": self.detail, "code": self.code}
        if self.element:
            error["element"] = self.element
        return {"Error": [error], "type": self.type}


def not_found(entity: str, record_id: object) -> ApiFault:
    return ApiFault(
        "610",
        "Object Not Found",
        "Object Not Found : Something you're trying to use has been made inactive. Check the "
        "fields with accounts, customers, items, vendors or employees.",
        element=f"{entity} Id {record_id}",
    )


def required(element: str) -> ApiFault:
    return ApiFault(
        "2020",
        "Required param missing, need to supply the required value for the API",
        f"Required parameter {element} is missing in the request",
        element=element,
    )


def invalid(element: str, detail: str) -> ApiFault:
    return ApiFault("2010", "Request has invalid or unsupported property", detail, element=element)


def stale(entity: str, record_id: object) -> ApiFault:
    return ApiFault(
        "5010",
        "Stale Object Error",
        "Stale Object Error : You and Sandbox User were working on this at the same time. "
        "Sandbox User finished before you did, so your work was not saved.",
        element=f"{entity} Id {record_id}",
    )


def business(detail: str) -> ApiFault:
    return ApiFault(
        "6000",
        "A business validation error has occurred while processing your request",
        f"Business Validation Error: {detail}",
    )


def parse_error(detail: str) -> ApiFault:
    return ApiFault("4000", "Error parsing query", f"QueryParserError: {detail}")


def invalid_query(detail: str) -> ApiFault:
    return ApiFault("4001", "Invalid query", f"QueryValidationError: {detail}")


def throttled() -> ApiFault:
    return ApiFault(
        "3001",
        "message=ThrottleExceeded; errorCode=003001; statusCode=429",
        "The request limit was reached.",
        status=429,
        type="SERVICE",
    )


def unauthenticated(detail: str) -> ApiFault:
    return ApiFault(
        "3200",
        "message=AuthenticationFailed; errorCode=003200; statusCode=401",
        detail,
        status=401,
        type="AUTHENTICATION",
    )
