"""The SQL units of work: read-write ones (one transaction, rolled back unless committed) and
read-only ones, whose connections refuse writes and whose store is typed to offer none."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import Self, TypeVar

from taskforge_common.db.engine import Database, ReadOnlyTransaction, Transaction
from taskforge_common.db.unit_of_work import TransactionScope
from taskforge_metering.application.ports import MeteringReader
from taskforge_metering.storage.repository import MeteringRepository
from taskforge_metering.storage.repository_postgres import PostgresMeteringRepository

_Transaction = TypeVar("_Transaction", bound=ReadOnlyTransaction)


def repository_for(transaction: ReadOnlyTransaction) -> MeteringRepository:
    """The PostgreSQL-tuned repository where the asyncpg connection is at hand."""
    if transaction.driver is not None:
        return PostgresMeteringRepository(transaction)
    return MeteringRepository(transaction)


class _SqlScope(TransactionScope[_Transaction]):
    """A transaction of the database and the one repository over it."""

    def __init__(self, scope: AbstractAsyncContextManager[_Transaction]) -> None:
        super().__init__(scope)
        self._repository: MeteringRepository | None = None

    async def __aenter__(self) -> Self:
        await super().__aenter__()
        self._repository = repository_for(self._open())
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._repository = None
        await super().__aexit__(exc_type, exc, traceback)

    def _store(self) -> MeteringRepository:
        assert self._repository is not None, "store used outside `async with`"
        return self._repository


class SqlReadUnitOfWork(_SqlScope[ReadOnlyTransaction]):
    def __init__(self, database: Database) -> None:
        super().__init__(database.read_only_transaction())

    @property
    def store(self) -> MeteringReader:
        return self._store()


class SqlUnitOfWork(_SqlScope[Transaction]):
    def __init__(self, database: Database) -> None:
        super().__init__(database.transaction())

    @property
    def store(self) -> MeteringRepository:
        return self._store()

    async def commit(self) -> None:
        await self._open().commit()


class SqlUnitOfWorkFactory:
    """The use cases' `UnitOfWorkFactory` over one database."""

    def __init__(self, database: Database) -> None:
        self._database = database

    def __call__(self) -> SqlUnitOfWork:
        return SqlUnitOfWork(self._database)

    def reader(self) -> SqlReadUnitOfWork:
        return SqlReadUnitOfWork(self._database)
