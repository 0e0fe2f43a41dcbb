"""The two kinds of error answers: a whole call refused, and one record refused."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class ApiError(Exception):
    """The call is answered with ``status`` and ``[{"message", "errorCode", "fields"}]``."""

    def __init__(self, status: int, code: str, message: str, fields: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.fields = list(fields)

    @property
    def payload(self) -> list[dict[str, Any]]:
        item: dict[str, Any] = {"message": self.message, "errorCode": self.code}
        if self.fields:
            item["fields"] = self.fields
        return [item]


class RecordRefusedError(Exception):
    """One record is refused: ``{"statusCode", "message", "fields"}`` in its result."""

    def __init__(self, code: str, message: str, fields: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.fields = list(fields)

    @property
    def payload(self) -> dict[str, Any]:
        return {"statusCode": self.code, "message": self.message, "fields": self.fields}

    def bulk_text(self) -> str:
        """The ``sf__Error`` column of a Bulk API 2.0 failed result."""
        return f"{self.code}:{self.message}:{','.join(self.fields)} --"


def not_found() -> ApiError:
    return ApiError(404, "NOT_FOUND", "The requested resource does not exist")
