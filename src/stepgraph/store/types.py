"""Column types that behave identically on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, Dialect, Numeric, String
from sqlalchemy.types import DateTime, TypeDecorator, TypeEngine

# Estimated cost is kept exactly with this many decimal places on every store.
COST_SCALE = 10
_COST_QUANTUM = Decimal(1).scaleb(-COST_SCALE)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware instant, always stored and returned in UTC.

    SQLite has no timestamp type: SQLAlchemy stores a fixed-width text form
    that sorts chronologically once every value is in UTC, which this type
    guarantees on the way in.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not accepted by the store")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class ExactCost(TypeDecorator[Decimal]):
    """US dollars, exact to ``COST_SCALE`` decimal places.

    PostgreSQL keeps NUMERIC natively. SQLite would turn NUMERIC into a binary
    float, so there the value is an integer count of 10^-COST_SCALE dollars:
    exact, sortable and summable.
    """

    impl = Numeric(30, COST_SCALE)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(BigInteger())
        return dialect.type_descriptor(Numeric(30, COST_SCALE, asdecimal=True))

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        exact = value.quantize(_COST_QUANTUM)
        if exact != value:
            raise ValueError(f"cost {value} has more than {COST_SCALE} decimal places")
        if dialect.name == "sqlite":
            return int(exact.scaleb(COST_SCALE))
        return exact

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        if dialect.name == "sqlite":
            return Decimal(int(value)).scaleb(-COST_SCALE)
        return Decimal(value)


# The longest id any store keeps (PostgreSQL enforces it; SQLite would not, so writers check).
IDENTIFIER_LENGTH = 255


class Identifier(TypeDecorator[str]):
    """An id compared byte for byte on every store (PostgreSQL collation "C")."""

    impl = String(IDENTIFIER_LENGTH)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(String(IDENTIFIER_LENGTH, collation="C"))
        return dialect.type_descriptor(String(IDENTIFIER_LENGTH))
