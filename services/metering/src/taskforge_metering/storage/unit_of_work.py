"""The SQL unit of work: one transaction, rolled back unless committed."""

from __future__ import annotations

import contextlib
from types import TracebackType
from typing import Self

from taskforge_common.db.engine import Database, ReadOnlyTransaction, Transaction
from taskforge_metering.storage.repository import MeteringRepository
from taskforge_metering.storage.repository_postgres import PostgresMeteringRepository


def repository_for(transaction: ReadOnlyTransaction) -> MeteringRepository:
    """The PostgreSQL-tuned repository where the asyncpg connection is at hand."""
    if transaction.driver is not None:
        return PostgresMeteringRepository(transaction)
    return MeteringRepository(transaction)


class SqlUnitOfWork:
    def __init__(self, database: Database, *, read_only: bool = False) -> None:
        self._database = database
        self._read_only = read_only
        self._scope: contextlib.AbstractAsyncContextManager[ReadOnlyTransaction] | None = None
        self._transaction: ReadOnlyTransaction | None = None
        self._repository: MeteringRepository | None = None

    async def __aenter__(self) -> Self:
        self._scope = (
            self._database.read_only_transaction()
            if self._read_only
            else self._database.transaction()
        )
        self._transaction = await self._scope.__aenter__()
        self._repository = repository_for(self._transaction)
        return self

    @property
    def store(self) -> MeteringRepository:
        assert self._repository is not None, "store used outside `async with`"
        return self._repository

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        assert self._scope is not None
        await self._scope.__aexit__(exc_type, exc, traceback)

    async def commit(self) -> None:
        assert isinstance(self._transaction, Transaction), (
            "commit() outside `async with` or of a read-only unit of work"
        )
        await self._transaction.commit()
