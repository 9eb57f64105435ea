"""Column types that keep money, quantities and instants exact on PostgreSQL and SQLite alike.

PostgreSQL has NUMERIC and timestamptz. SQLite has neither: decimals are stored as text (its REAL
would round) and summed by the exact functions registered in `engine.py`; instants are stored as
naive UTC text, which sorts and compares correctly.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import DateTime, Dialect, Numeric, String
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import TypeDecorator, TypeEngine


class ExactDecimal(TypeDecorator[Decimal]):
    """NUMERIC(precision, scale) on PostgreSQL, decimal text on SQLite; `Decimal` in Python."""

    impl = Numeric
    cache_ok = True

    def __init__(self, precision: int = 38, scale: int = 12) -> None:
        super().__init__()
        self.precision = precision
        self.scale = scale

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String())
        return dialect.type_descriptor(Numeric(self.precision, self.scale, asdecimal=True))

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if not isinstance(value, Decimal):
            raise TypeError(f"ExactDecimal takes Decimal, not {type(value).__name__}")
        return f"{value:f}" if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        return value if isinstance(value, Decimal) else Decimal(str(value))


class UTCDateTime(TypeDecorator[datetime]):
    """timestamptz on PostgreSQL, naive UTC text on SQLite; always aware UTC in Python."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are refused: every instant is UTC-aware")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class decimal_sum(FunctionElement[Decimal]):
    """SUM over an ExactDecimal column: `sum` on PostgreSQL, the exact `dec_sum` on SQLite."""

    type = ExactDecimal()
    inherit_cache = True


class decimal_add(FunctionElement[Decimal]):
    """a + b of two ExactDecimal expressions: `+` on PostgreSQL, the exact `dec_add` on SQLite."""

    type = ExactDecimal()
    inherit_cache = True


@compiles(decimal_sum)
def _sum_default(element: decimal_sum, compiler: SQLCompiler, **kw: Any) -> str:
    return f"sum({compiler.process(element.clauses, **kw)})"


@compiles(decimal_sum, "sqlite")
def _sum_sqlite(element: decimal_sum, compiler: SQLCompiler, **kw: Any) -> str:
    return f"dec_sum({compiler.process(element.clauses, **kw)})"


@compiles(decimal_add)
def _add_default(element: decimal_add, compiler: SQLCompiler, **kw: Any) -> str:
    left, right = (compiler.process(c, **kw) for c in element.clauses)
    return f"({left} + {right})"


@compiles(decimal_add, "sqlite")
def _add_sqlite(element: decimal_add, compiler: SQLCompiler, **kw: Any) -> str:
    return f"dec_add({compiler.process(element.clauses, **kw)})"
