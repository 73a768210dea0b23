"""Per-request context: the store, the limits and request-scoped DataLoaders."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property

from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.dataloader import DataLoader

from stepgraph.auth.authenticator import Authenticator
from stepgraph.auth.jwt import AuthUnavailable
from stepgraph.auth.viewer import READ_STEP_RESULTS, Unauthenticated, Viewer
from stepgraph.query import PageLimits
from stepgraph.store import reads
from stepgraph.store.engine import reading


@dataclass
class Context:
    """What every resolver may use; built fresh for each request."""

    request: Request | WebSocket
    response: Response | WebSocket | None
    engine: AsyncEngine
    limits: PageLimits
    request_id: str
    authenticator: Authenticator
    # The request's ``Authorization`` header, checked by :meth:`authenticate` before
    # anything reads ``viewer``.
    authorization: str | None
    # The authenticated caller; None when the request carried no usable token, in
    # which case only introspection may run (see graphql.auth).
    viewer: Viewer | None = None
    auth_error: Unauthenticated | AuthUnavailable | None = None
    authenticated: bool = field(default=False, init=False)
    # A batch's operations run together and each makes sure of the caller.
    _authenticating: asyncio.Lock = field(default_factory=asyncio.Lock, init=False)

    @property
    def organization_id(self) -> str:
        """The organization every read of this request is scoped to."""
        if self.viewer is None:
            raise RuntimeError("a resolver ran without an authenticated caller")
        return self.viewer.organization_id

    def refusal(self) -> tuple[int, str, str] | None:
        """Why the checked caller may not read step results: (HTTP status, code, message);
        None when it may."""
        if isinstance(self.auth_error, AuthUnavailable):
            return 503, "AUTH_UNAVAILABLE", self.auth_error.message
        if self.viewer is None:
            message = self.auth_error.message if self.auth_error else "unauthenticated"
            return 401, "UNAUTHENTICATED", message
        if READ_STEP_RESULTS not in self.viewer.scopes:
            return 403, "FORBIDDEN", f"this token lacks the `{READ_STEP_RESULTS}` scope"
        return None

    def lends_connection(self) -> bool:
        """Whether :meth:`authenticate` is still to run and would check the token on a
        connection of ``engine`` lent to it (an API key): one checkout for the key and
        the read that follows."""
        return not self.authenticated and self.authenticator.lends_connection(
            self.engine, self.authorization
        )

    async def authenticate(self, connection: AsyncConnection | None = None) -> None:
        """Check the token once: sets ``viewer``, or ``auth_error`` for a refused one.

        ``connection`` may be given only when :meth:`lends_connection` is true.
        """
        async with self._authenticating:
            if self.authenticated:
                return
            try:
                self.viewer = await self.authenticator.authenticate(
                    self.authorization, connection=connection
                )
            except (Unauthenticated, AuthUnavailable) as exc:
                self.auth_error = exc
            self.authenticated = True

    # The request's loaders, made when a resolver first asks (a list page needs neither).
    @cached_property
    def step_results(self) -> DataLoader[str, RowMapping | None]:
        """Step results by id, batched per tick of the event loop."""
        return DataLoader(load_fn=self._load_step_results)

    @cached_property
    def flows(self) -> DataLoader[str, RowMapping | None]:
        """Flows by id, batched per tick of the event loop."""
        return DataLoader(load_fn=self._load_flows)

    async def _load_step_results(self, ids: Sequence[str]) -> list[RowMapping | None]:
        async with reading(self.engine) as connection:
            found = await reads.fetch_step_results(
                connection, ids, organization_id=self.organization_id
            )
        return [found.get(i) for i in ids]

    async def _load_flows(self, ids: Sequence[str]) -> list[RowMapping | None]:
        async with reading(self.engine) as connection:
            found = await reads.fetch_flows(connection, ids, organization_id=self.organization_id)
        return [found.get(i) for i in ids]
