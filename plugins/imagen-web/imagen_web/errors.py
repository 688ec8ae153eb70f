"""Every error the API answers with: ``{"error": {"code", "message"}}`` and a status.

Messages are one line for the person reading them, like the CLI's. What leaves
the server is scrubbed of credentials that a backend's own error text may carry
(``https://user:secret@host``).
"""

from __future__ import annotations

from typing import Any

from imagen_core.errors import redact


class ApiError(Exception):
    """An error answered as JSON with ``status``; raise it anywhere in a handler."""

    def __init__(
        self, status: int, code: str, message: str, *, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers


def scrub(message: str) -> str:
    """``message`` on one line, without the credentials of any URL in it."""
    return redact(" ".join(message.split()))


def error_body(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": scrub(message)}}


def invalid(field: str, message: str, *, code: str = "invalid_body") -> ApiError:
    """A 422 naming the field: ``prompt: required field missing``."""
    return ApiError(422, code, f"{field}: {message}")
