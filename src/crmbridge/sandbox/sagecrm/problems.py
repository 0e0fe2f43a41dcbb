"""The one exception the sandbox's handlers raise for an answer that is an error."""

from __future__ import annotations


class ApiError(Exception):
    """An error answer: a SOAP fault (its ``faultstring`` is the message) or a REST status."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        #: the REST status; SOAP faults are always HTTP 500
        self.status = status


def not_web_enabled(entity: str) -> ApiError:
    return ApiError(f"Entity '{entity}' is not Web Service enabled", 403)


QUERY_FAILED = "Query failed to run successfully"
INVALID_SESSION = "Invalid session id: the session has expired or was ended by another logon"
