"""Per-request context: the store, the limits and request-scoped DataLoaders."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.dataloader import DataLoader

from stepgraph.auth.jwt import AuthUnavailable
from stepgraph.auth.viewer import Unauthenticated, Viewer
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
    # The authenticated caller; None when the request carried no usable token, in
    # which case only introspection may run (see graphql.auth).
    viewer: Viewer | None = None
    auth_error: Unauthenticated | AuthUnavailable | None = None
    step_results: DataLoader[str, RowMapping | None] = field(init=False)
    flows: DataLoader[str, RowMapping | None] = field(init=False)

    @property
    def organization_id(self) -> str:
        """The organization every read of this request is scoped to."""
        if self.viewer is None:
            raise RuntimeError("a resolver ran without an authenticated caller")
        return self.viewer.organization_id

    def __post_init__(self) -> None:
        self.step_results = DataLoader(load_fn=self._load_step_results)
        self.flows = DataLoader(load_fn=self._load_flows)

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
