"""The caller of a request and the errors of authentication and authorization."""

from __future__ import annotations

from dataclasses import dataclass

READ_STEP_RESULTS = "read:step-results"
WRITE_STEP_RESULTS = "write:step-results"
KNOWN_SCOPES = (READ_STEP_RESULTS, WRITE_STEP_RESULTS)


@dataclass(frozen=True, slots=True)
class Viewer:
    """An authenticated caller: every read is scoped to ``organization_id``."""

    user_id: str
    organization_id: str
    scopes: frozenset[str]
    # How the caller proved who they are: "api_key" or "jwt".
    method: str
    # The API key's id or the token's subject, for logs (never the secret).
    credential_id: str

    def require(self, scope: str) -> None:
        """Raise :class:`Forbidden` unless the caller holds ``scope``."""
        if scope not in self.scopes:
            raise Forbidden(f"this token lacks the `{scope}` scope")


class Unauthenticated(Exception):
    """No usable bearer token: missing, malformed, unknown, revoked or expired.

    ``message`` is safe to show the caller; it never echoes the token.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Forbidden(Exception):
    """A valid token without the scope the operation needs."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
