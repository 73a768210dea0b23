"""From an ``Authorization`` header to a :class:`Viewer`, whatever the kind of token."""

from __future__ import annotations

from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncEngine

from stepgraph.auth.api_keys import looks_like_api_key, verify_api_key
from stepgraph.auth.viewer import Unauthenticated, Viewer


class TokenVerifier(Protocol):
    """Checks session tokens (JWTs)."""

    async def verify(self, token: str) -> Viewer: ...


class Authenticator:
    """Accepts stepgraph API keys and, when configured, session JWTs."""

    def __init__(self, engine: AsyncEngine, session_tokens: TokenVerifier | None = None) -> None:
        self._engine = engine
        self._session_tokens = session_tokens

    async def authenticate(self, authorization: str | None) -> Viewer:
        """The caller behind an ``Authorization`` header value, or :class:`Unauthenticated`."""
        if authorization is None or not authorization.strip():
            raise Unauthenticated("missing bearer token: send `Authorization: Bearer <token>`")
        scheme, _, token = authorization.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token or " " in token:
            raise Unauthenticated("malformed Authorization header: expected `Bearer <token>`")
        if looks_like_api_key(token):
            async with self._engine.connect() as connection:
                return await verify_api_key(connection, token)
        if token.count(".") == 2:
            if self._session_tokens is None:
                raise Unauthenticated("session tokens are not accepted by this server")
            return await self._session_tokens.verify(token)
        raise Unauthenticated("unrecognised bearer token")
