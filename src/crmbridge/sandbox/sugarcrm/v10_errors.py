"""The REST v10 error answer: HTTP status plus ``{"error": label, "error_message": text}``."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """A v10 call failed, e.g. ``ApiError(404, "not_found", "Could not find record ...")``."""

    def __init__(self, status: int, error: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message

    @property
    def payload(self) -> dict[str, Any]:
        return {"error": self.error, "error_message": self.message}
