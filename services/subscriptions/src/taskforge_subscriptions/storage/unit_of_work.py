"""The SQL units of work: read-write ones (one transaction, rolled back unless committed) and
read-only ones, whose connections refuse writes and whose repositories are typed to offer none."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import TypeVar

from taskforge_common.db.engine import Database, ReadOnlyTransaction, Transaction
from taskforge_common.db.unit_of_work import TransactionScope
from taskforge_subscriptions.application.ports import (
    AuditTrailReader,
    CreditReader,
    EventsReader,
    InvoicesReader,
    PriceBookReader,
    RequestsReader,
    SubscriptionsReader,
    TaxRatesReader,
)
from taskforge_subscriptions.storage.repositories import (
    SqlAuditTrail,
    SqlCredit,
    SqlEvents,
    SqlInvoices,
    SqlOutbox,
    SqlPriceBook,
    SqlRequests,
    SqlSequences,
    SqlSubscriptions,
    SqlTaxRates,
)

_Transaction = TypeVar("_Transaction", bound=ReadOnlyTransaction)


class _SqlScope(TransactionScope[_Transaction]):
    """A transaction of the database; repositories are made on it on demand."""

    def __init__(
        self, database: Database, scope: AbstractAsyncContextManager[_Transaction]
    ) -> None:
        super().__init__(scope)
        self._dialect = database.dialect


class SqlReadUnitOfWork(_SqlScope[ReadOnlyTransaction]):
    def __init__(self, database: Database) -> None:
        super().__init__(database, database.read_only_transaction())

    @property
    def price_book(self) -> PriceBookReader:
        return SqlPriceBook(self._open(), self._dialect)

    @property
    def subscriptions(self) -> SubscriptionsReader:
        return SqlSubscriptions(self._open(), self._dialect)

    @property
    def invoices(self) -> InvoicesReader:
        return SqlInvoices(self._open(), self._dialect)

    @property
    def credit(self) -> CreditReader:
        return SqlCredit(self._open(), self._dialect)

    @property
    def tax_rates(self) -> TaxRatesReader:
        return SqlTaxRates(self._open(), self._dialect)

    @property
    def requests(self) -> RequestsReader:
        return SqlRequests(self._open(), self._dialect)

    @property
    def events(self) -> EventsReader:
        return SqlEvents(self._open(), self._dialect)

    @property
    def audit(self) -> AuditTrailReader:
        return SqlAuditTrail(self._open(), self._dialect)


class SqlUnitOfWork(_SqlScope[Transaction]):
    def __init__(self, database: Database) -> None:
        super().__init__(database, database.transaction())

    @property
    def price_book(self) -> SqlPriceBook:
        return SqlPriceBook(self._open(), self._dialect)

    @property
    def subscriptions(self) -> SqlSubscriptions:
        return SqlSubscriptions(self._open(), self._dialect)

    @property
    def invoices(self) -> SqlInvoices:
        return SqlInvoices(self._open(), self._dialect)

    @property
    def credit(self) -> SqlCredit:
        return SqlCredit(self._open(), self._dialect)

    @property
    def tax_rates(self) -> SqlTaxRates:
        return SqlTaxRates(self._open(), self._dialect)

    @property
    def requests(self) -> SqlRequests:
        return SqlRequests(self._open(), self._dialect)

    @property
    def events(self) -> SqlEvents:
        return SqlEvents(self._open(), self._dialect)

    @property
    def sequences(self) -> SqlSequences:
        return SqlSequences(self._open(), self._dialect)

    @property
    def outbox(self) -> SqlOutbox:
        return SqlOutbox(self._open(), self._dialect)

    @property
    def audit(self) -> SqlAuditTrail:
        return SqlAuditTrail(self._open(), self._dialect)

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
