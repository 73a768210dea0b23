"""From an ``Authorization`` header to a :class:`Viewer`, whatever the kind of token."""

from __future__ import annotations

from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from stepgraph.auth.api_keys import looks_like_api_key, verify_api_key
from stepgraph.auth.viewer import Unauthenticated, Viewer
from stepgraph.store.engine import reading


class TokenVerifier(Protocol):
    """Checks session tokens (JWTs)."""

    async def verify(self, token: str) -> Viewer: ...


class Authenticator:
    """Accepts stepgraph API keys and, when configured, session JWTs."""

    def __init__(self, engine: AsyncEngine, session_tokens: TokenVerifier | None = None) -> None:
        self._engine = engine
        self._session_tokens = session_tokens

    def lends_connection(self, engine: AsyncEngine, authorization: str | None) -> bool:
        """Whether to check this header's token on a connection of ``engine`` lent by the caller.

        True for an API key when keys are checked on ``engine`` (no read replica), so one
        connection serves the key and the read; anything else authenticates on its own,
        without holding a connection (a session token may wait on its JWKS).
        """
        try:
            return engine is self._engine and looks_like_api_key(bearer_token(authorization))
        except Unauthenticated:
            return False

    async def authenticate(
        self, authorization: str | None, *, connection: AsyncConnection | None = None
    ) -> Viewer:
        """The caller behind an ``Authorization`` header value, or :class:`Unauthenticated`.

        ``connection``, when given, must come from the engine keys are checked on (see
        :meth:`lends_connection`): an API key is then looked up on it.
        """
        token = bearer_token(authorization)
        if looks_like_api_key(token):
            if connection is not None:
                return await verify_api_key(connection, token)
            async with reading(self._engine) as own:
                return await verify_api_key(own, token)
        if token.count(".") == 2:
            if self._session_tokens is None:
                raise Unauthenticated("session tokens are not accepted by this server")
            return await self._session_tokens.verify(token)
        raise Unauthenticated("unrecognised bearer token")


def bearer_token(authorization: str | None) -> str:
    """The token of an ``Authorization: Bearer <token>`` value; :class:`Unauthenticated` if none."""
    if authorization is None or not authorization.strip():
        raise Unauthenticated("missing bearer token: send `Authorization: Bearer <token>`")
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        raise Unauthenticated("malformed Authorization header: expected `Bearer <token>`")
    return token
