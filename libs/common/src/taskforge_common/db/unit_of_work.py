"""The base of every service's SQL unit of work: one database transaction for `async with`."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import Generic, Self, TypeVar

from taskforge_common.db.engine import ReadOnlyTransaction

_Transaction = TypeVar("_Transaction", bound=ReadOnlyTransaction)


class TransactionScope(Generic[_Transaction]):
    """Entering opens the transaction (`Database.transaction()` or `.read_only_transaction()`),
    leaving ends it: rolled back unless it was committed. Repositories are made on `_open()`,
    which refuses use outside the block."""

    def __init__(self, scope: AbstractAsyncContextManager[_Transaction]) -> None:
        self._scope = scope
        self._transaction: _Transaction | None = None

    async def __aenter__(self) -> Self:
        self._transaction = await self._scope.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._transaction = None
        await self._scope.__aexit__(exc_type, exc, traceback)

    def _open(self) -> _Transaction:
        assert self._transaction is not None, "unit of work used outside `async with`"
        return self._transaction
