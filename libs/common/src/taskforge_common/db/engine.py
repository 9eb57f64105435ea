"""The async engine and transactions for PostgreSQL (asyncpg) and SQLite (aiosqlite).

SQLite is the zero-setup default. It allows one writer at a time, so a `Database` on SQLite runs
its transactions one after another (an asyncio lock) instead of letting them fail as "locked".
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import event, make_url, text
from sqlalchemy import exc as sqlalchemy_exc
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import ConnectionPoolEntry

from taskforge_common.errors import Unavailable

logger = logging.getLogger(__name__)


class ReadOnlyTransaction:
    """Open read-only work: a SQLAlchemy session and, on PostgreSQL, an asyncpg connection, for
    hot paths where SQLAlchemy's per-statement work costs more than the query. Every write
    through either is refused by the database. On PostgreSQL there is no transaction: each
    statement stands alone and sees all that is committed. The session is made when first
    used, so work that runs on the driver alone never pays for one."""

    def __init__(self, open_session: Callable[[], AsyncSession], driver: Any | None) -> None:
        self._open_session = open_session
        self._session: AsyncSession | None = None
        self.driver = driver  # asyncpg.Connection on PostgreSQL, None on SQLite

    @property
    def session(self) -> AsyncSession:
        if self._session is None:
            self._session = self._open_session()
        return self._session

    async def close_session(self) -> None:
        if self._session is not None:
            await self._session.close()


class Transaction(ReadOnlyTransaction):
    """One open read-write transaction, rolled back unless `commit()` ends it. On PostgreSQL the
    session and the asyncpg connection both run inside it."""

    def __init__(
        self,
        open_session: Callable[[], AsyncSession],
        driver: Any | None,
        commit: Callable[[], Awaitable[None]],
    ) -> None:
        super().__init__(open_session, driver)
        self._commit = commit

    async def commit(self) -> None:
        # Sessions do not autoflush, and on PostgreSQL the commit is the driver's, which knows
        # nothing of the session: pending ORM changes are sent first or they are lost.
        if self._session is not None:
            await self._session.flush()
        await self._commit()


class _DriverTransaction:
    """A transaction begun on the asyncpg connection under a SQLAlchemy connection.

    A connection whose transaction cannot be ended cleanly (broken, a commit of unknown
    outcome, a statement cut off by cancellation) is invalidated, so the pool discards it
    rather than hand it to the next caller mid-transaction."""

    def __init__(self, connection: AsyncConnection, driver: Any) -> None:
        self._connection = connection
        self._transaction = driver.transaction()
        self._ended = False

    async def start(self) -> None:
        await self._transaction.start()

    async def commit(self) -> None:
        self._ended = True
        try:
            await self._transaction.commit()
        except BaseException:
            await self._connection.invalidate()
            raise

    async def rollback_unless_committed(self) -> None:
        if self._ended:
            return
        self._ended = True
        try:
            await self._transaction.rollback()
        except Exception:  # the error that led here, if any, is the one worth raising
            await self._connection.invalidate()
        except BaseException:
            await self._connection.invalidate()
            raise


class _ReaderConnections:
    """asyncpg connections for read-only work on PostgreSQL, outside SQLAlchemy's pool.

    Autocommit reads leave no state behind, so a connection goes back to the idle stack as it
    is: checking one out costs a list pop, where SQLAlchemy's pool costs ~80 us of CPU and
    asyncpg's resets each connection with a round trip. At most `size` are open; one whose
    statement was cut off (cancellation, a lost connection) is terminated, not reused.
    """

    def __init__(self, connect_args: dict[str, Any], size: int) -> None:
        self._connect_args = connect_args
        self._slots = asyncio.Semaphore(size)
        self._idle: list[asyncpg.Connection] = []

    async def acquire(self) -> asyncpg.Connection:
        """A connection for the caller alone until it hands it back with `release`."""
        await self._slots.acquire()
        try:
            return await self._checkout()
        except BaseException:
            self._slots.release()
            raise

    def release(self, connection: asyncpg.Connection, error: BaseException | None) -> None:
        """Take back a connection; `error` is what ended its use, if anything did."""
        try:
            suspect = isinstance(error, _CONNECTION_SUSPECT)
            if suspect or connection.is_closed() or connection.is_in_transaction():
                connection.terminate()
            else:
                self._idle.append(connection)
        finally:
            self._slots.release()

    async def _checkout(self) -> asyncpg.Connection:
        """An idle connection, or a new one. Idle ones the server has closed meanwhile (a
        restart, an idle timeout) are dropped here rather than failing the caller."""
        while self._idle:
            connection = self._idle.pop()
            if not connection.is_closed():
                return connection
            connection.terminate()
        return await asyncpg.connect(**self._connect_args)

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for connection in idle:
            await connection.close()


class _PostgresReader:
    """`Database.read_only_transaction()` on PostgreSQL: a reader connection, no BEGIN.
    CheckLimits takes one per call, so this is a plain class: stacked generator-based context
    managers cost ~40 µs of CPU a call (measured)."""

    __slots__ = ("_open_session", "_readers", "_transaction")

    def __init__(
        self, readers: _ReaderConnections, open_session: Callable[[], AsyncSession]
    ) -> None:
        self._readers = readers
        self._open_session = open_session
        self._transaction: ReadOnlyTransaction | None = None

    async def __aenter__(self) -> ReadOnlyTransaction:
        try:
            driver = await self._readers.acquire()
        except Exception as error:
            _raise_if_unreachable(error)
            raise
        self._transaction = ReadOnlyTransaction(self._open_session, driver)
        return self._transaction

    async def __aexit__(
        self,
        _type: type[BaseException] | None,
        error: BaseException | None,
        _traceback: object,
    ) -> None:
        transaction = self._transaction
        assert transaction is not None
        try:
            await transaction.close_session()
        finally:
            self._readers.release(transaction.driver, error)
        if isinstance(error, Exception):
            _raise_if_unreachable(error)


# Errors after which a connection's state is unknown; a query error leaves it usable.
_CONNECTION_SUSPECT = (
    asyncio.CancelledError,
    TimeoutError,
    OSError,
    asyncpg.exceptions.InterfaceError,
    asyncpg.exceptions.InternalClientError,
)
# Options of SQLAlchemy's asyncpg dialect that asyncpg.connect does not take.
_SQLALCHEMY_CONNECT_OPTIONS = (
    "async_fallback",
    "async_creator_fn",
    "prepared_statement_cache_size",
    "prepared_statement_name_func",
)


class Database:
    """One engine and its sessions; `transaction()` and `read_only_transaction()` are the only
    ways to get one."""

    def __init__(self, url: str, *, pool_size: int = 10, echo: bool = False) -> None:
        parsed = make_url(url)
        self.url = url
        self.dialect = parsed.get_backend_name()
        self._readers: _ReaderConnections | None = None
        self._reader_engine: AsyncEngine | None = None
        self._read_only: Callable[[], contextlib.AbstractAsyncContextManager[ReadOnlyTransaction]]
        if self.dialect == "sqlite":
            _ensure_sqlite_directory(parsed.database)
            self.engine: AsyncEngine = create_async_engine(url, echo=echo)
            event.listen(self.engine.sync_engine, "connect", _configure_sqlite)
            self._serial: asyncio.Lock | None = asyncio.Lock()
            self._read_only = self._sqlite_read_only_transaction
        elif self.dialect == "postgresql":
            self.engine = _postgres_engine(url, echo, pool_size, max_overflow=pool_size)
            self._serial = None
            _, connect_args = self.engine.dialect.create_connect_args(parsed)
            for option in _SQLALCHEMY_CONNECT_OPTIONS:
                connect_args.pop(option, None)
            read_only_settings = {
                **(connect_args.get("server_settings") or {}),
                "default_transaction_read_only": "on",
            }
            connect_args["server_settings"] = read_only_settings
            self._readers = _ReaderConnections(dict(connect_args), pool_size)
            # The sessions of read-only work run on an engine of their own whose connections
            # refuse writes the same way, set once per connection when it is opened: a SET or
            # BEGIN READ ONLY per checkout would cost a round trip on every read. At most
            # `pool_size` readers are open at once, each with at most one session: no overflow.
            self._reader_engine = _postgres_engine(
                url,
                echo,
                pool_size,
                max_overflow=0,
                connect_args={"server_settings": read_only_settings},
            )
            self._read_only = functools.partial(
                _PostgresReader,
                self._readers,
                async_sessionmaker(self._reader_engine, expire_on_commit=False, autoflush=False),
            )
        else:
            raise ValueError(f"unsupported database {self.dialect!r}: use postgresql or sqlite")
        self._sessions = async_sessionmaker(self.engine, expire_on_commit=False, autoflush=False)

    def read_only_transaction(self) -> contextlib.AbstractAsyncContextManager[ReadOnlyTransaction]:
        """Read-only work: the database refuses any write through it.

        On PostgreSQL each statement runs on its own (autocommit) and sees all that is
        committed, which spares BEGIN and ROLLBACK; for readers that need no consistency across
        statements. Errors are those of `transaction()`."""
        return self._read_only()

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        """A transaction that is rolled back unless the caller commits it.

        A database that cannot be reached (refused or lost connections, a server shutting
        down, no connection free in time) raises `Unavailable`, which callers answer as
        UNAVAILABLE: retryable, unlike the INTERNAL of an unexpected error."""
        try:
            async with contextlib.AsyncExitStack() as stack:
                if self._serial is not None:
                    await stack.enter_async_context(self._serial)
                if self.dialect != "postgresql":
                    session = await stack.enter_async_context(self._sessions())
                    try:
                        yield Transaction(lambda: session, None, session.commit)
                    finally:
                        await session.rollback()
                    return
                # PostgreSQL: the connection runs in autocommit mode so that SQLAlchemy never
                # begins a transaction of its own; the one transaction is begun on the driver
                # connection here, and SQLAlchemy's statements and the driver's both run
                # inside it.
                connection = await stack.enter_async_context(self.engine.connect())
                driver = (await connection.get_raw_connection()).driver_connection

                def open_session() -> AsyncSession:
                    return AsyncSession(bind=connection, expire_on_commit=False, autoflush=False)

                driver_transaction = _DriverTransaction(connection, driver)
                await driver_transaction.start()
                stack.push_async_callback(driver_transaction.rollback_unless_committed)
                transaction = Transaction(open_session, driver, driver_transaction.commit)
                stack.push_async_callback(transaction.close_session)
                yield transaction
        except Exception as error:
            _raise_if_unreachable(error)
            raise

    @contextlib.asynccontextmanager
    async def _sqlite_read_only_transaction(self) -> AsyncIterator[ReadOnlyTransaction]:
        assert self._serial is not None
        try:
            async with self._serial, self.engine.connect() as connection:
                await connection.exec_driver_sql("PRAGMA query_only = ON")
                transaction = ReadOnlyTransaction(
                    lambda: AsyncSession(bind=connection, expire_on_commit=False, autoflush=False),
                    None,
                )
                try:
                    yield transaction
                finally:
                    # query_only stays with the pooled connection: it is switched off before
                    # the connection goes back, or the connection is discarded.
                    try:
                        await transaction.close_session()
                        await connection.exec_driver_sql("PRAGMA query_only = OFF")
                    except BaseException:
                        await connection.invalidate()
                        raise
        except Exception as error:
            _raise_if_unreachable(error)
            raise

    async def ping(self) -> bool:
        """True when the database answers; health checking calls this."""
        try:
            async with self.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        except Exception:  # any failure means "not ready"; the health status says so
            return False
        return True

    async def dispose(self) -> None:
        if self._readers is not None:
            await self._readers.close()
        if self._reader_engine is not None:
            await self._reader_engine.dispose()
        await self.engine.dispose()


def _postgres_engine(
    url: str,
    echo: bool,
    pool_size: int,
    *,
    max_overflow: int,
    connect_args: dict[str, Any] | None = None,
) -> AsyncEngine:
    # No pool_pre_ping: it costs a round trip per checkout (measured 0.4 ms, more than a
    # CheckLimits query). Connections the server closed are dropped at checkout
    # (_drop_closed_connection); health checking reports an outage meanwhile.
    # Autocommit, and nothing to reset on return: SQLAlchemy never begins transactions here,
    # and every driver transaction is ended or its connection invalidated (see
    # _DriverTransaction).
    engine = create_async_engine(
        url,
        echo=echo,
        pool_size=pool_size,
        max_overflow=max_overflow,
        isolation_level="AUTOCOMMIT",
        pool_reset_on_return=None,
        connect_args=connect_args or {},
    )
    event.listen(engine.sync_engine, "checkout", _drop_closed_connection)
    return engine


# Errors meaning "the database cannot be reached now", as raised by asyncpg, the OS and
# SQLAlchemy's pool; SQLAlchemy wraps driver errors, so their causes are looked at too.
_UNREACHABLE = (
    OSError,
    TimeoutError,
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.exceptions.TooManyConnectionsError,
    sqlalchemy_exc.TimeoutError,
)


def _raise_if_unreachable(error: Exception) -> None:
    """Raise `Unavailable` in place of an error meaning the database cannot be reached."""
    if _is_unreachable(error):
        logger.warning("database unavailable: %s", type(error).__name__)
        raise Unavailable("the database is unavailable; retry with backoff") from error


def _is_unreachable(error: BaseException) -> bool:
    seen: BaseException | None = error
    for _ in range(4):  # the error, and the driver errors it wraps
        if seen is None:
            return False
        if isinstance(seen, _UNREACHABLE):
            return True
        if isinstance(seen, sqlalchemy_exc.DBAPIError) and seen.connection_invalidated:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _drop_closed_connection(_dbapi: Any, _record: ConnectionPoolEntry, proxy: Any) -> None:
    """Pool checkout: a connection the server closed while it sat in the pool (a restart, an
    idle timeout) is replaced at once instead of failing its next statement. asyncpg has
    noticed the closed socket, so this costs no round trip, unlike pool_pre_ping."""
    if proxy.driver_connection.is_closed():
        raise DisconnectionError("the server closed this pooled connection")


def _ensure_sqlite_directory(database: str | None) -> None:
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(os.path.dirname(os.path.abspath(database))).mkdir(parents=True, exist_ok=True)


class _DecimalSum:
    """sqlite3 aggregate: the exact sum of decimal text values (NULL when there are none)."""

    def __init__(self) -> None:
        self.total: Decimal | None = None

    def step(self, value: Any) -> None:
        if value is not None:
            self.total = (self.total or Decimal(0)) + Decimal(str(value))

    def finalize(self) -> str | None:
        return None if self.total is None else f"{self.total:f}"


def _decimal_add(left: Any, right: Any) -> str | None:
    if left is None or right is None:
        return None
    return f"{Decimal(str(left)) + Decimal(str(right)):f}"


def _configure_sqlite(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    """Durable WAL, foreign keys, and the exact decimal functions `dec_sum` and `dec_add`."""
    cursor = dbapi_connection.cursor()
    for pragma in (
        "PRAGMA journal_mode=WAL",
        "PRAGMA synchronous=FULL",  # an acknowledged write survives a power cut
        "PRAGMA foreign_keys=ON",
        "PRAGMA busy_timeout=10000",
    ):
        cursor.execute(pragma)
    cursor.close()

    async def register(driver: Any) -> None:
        # aiosqlite exposes create_function but not create_aggregate; both must run on the
        # driver's own thread, which its _execute does.
        raw = driver._conn
        await driver._execute(raw.create_function, "dec_add", 2, _decimal_add, deterministic=True)
        await driver._execute(raw.create_aggregate, "dec_sum", 1, _DecimalSum)

    dbapi_connection.run_async(register)
