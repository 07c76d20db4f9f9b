"""The emulator's error: a Salesforce error code, message, fields and HTTP status."""

from __future__ import annotations

from typing import Any


class SfError(Exception):
    """A Salesforce API error as the REST API reports it (``[{message, errorCode, fields}]``)."""

    def __init__(
        self, code: str, message: str, fields: tuple[str, ...] | list[str] = (), status: int = 400
    ) -> None:
        self.code = code
        self.message = message
        self.fields = list(fields)
        self.status = status
        super().__init__(f"{code}: {message}")

    def rest_body(self) -> list[dict[str, Any]]:
        """The REST error body: a JSON array of one error."""
        return [{"message": self.message, "errorCode": self.code, "fields": self.fields}]

    def collection_error(self) -> dict[str, Any]:
        """The error entry of an sObject Collections result (``statusCode``, not errorCode)."""
        return {"statusCode": self.code, "message": self.message, "fields": self.fields}
