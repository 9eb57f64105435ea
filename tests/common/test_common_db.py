"""Database transactions on PostgreSQL and SQLite: rolled back unless committed, ORM and Core
writes committed together, read-only work that refuses writes, and on PostgreSQL one
transaction shared by the SQLAlchemy session and the asyncpg connection."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import Connection, String, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from taskforge_common.db.engine import Database, ReadOnlyTransaction
from taskforge_common.errors import Unavailable
from tests.databases import ADMIN_DSN, fresh_postgres_database


@contextlib.asynccontextmanager
async def open_database(dialect: str, tmp_path: Path) -> AsyncIterator[Database]:
    """A new database on `dialect` holding one empty table, `items`."""
    async with contextlib.AsyncExitStack() as stack:
        if dialect == "postgresql":
            url = await stack.enter_async_context(fresh_postgres_database("tf_test_common"))
        else:
            url = f"sqlite+aiosqlite:///{tmp_path / 'common.db'}"
        database = Database(url, pool_size=2)
        stack.push_async_callback(database.dispose)
        await _create_table(database)
        yield database


@pytest.fixture
async def postgres(tmp_path: Path) -> AsyncIterator[Database]:
    async with open_database("postgresql", tmp_path) as database:
        yield database


@pytest.fixture(params=["sqlite", "postgresql"])
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    async with open_database(request.param, tmp_path) as database:
        yield database


async def _create_table(database: Database) -> None:
    async with database.transaction() as transaction:
        await transaction.session.execute(text("CREATE TABLE items (name VARCHAR(20))"))
        await transaction.commit()


class _TestBase(DeclarativeBase):
    pass


class Note(_TestBase):
    """A mapped class on a table of these tests alone."""

    __tablename__ = "test_notes"
    id: Mapped[int] = mapped_column(primary_key=True)
    body: Mapped[str] = mapped_column(String(20))


async def _run_ddl(database: Database, ddl: Callable[[Connection], None]) -> None:
    async with database.transaction() as transaction:
        await transaction.session.run_sync(lambda session: ddl(session.connection()))
        await transaction.commit()


@pytest.fixture
async def with_notes(database: Database) -> AsyncIterator[Database]:
    """`database` with the `test_notes` table of `Note`."""
    await _run_ddl(database, _TestBase.metadata.create_all)
    yield database
    await _run_ddl(database, _TestBase.metadata.drop_all)


async def note_bodies(database: Database) -> list[str]:
    async with database.transaction() as transaction:
        return list(await transaction.session.scalars(select(Note.body).order_by(Note.id)))


async def names(database: Database) -> list[str]:
    async with database.read_only_transaction() as transaction:
        rows = await transaction.session.execute(text("SELECT name FROM items ORDER BY name"))
        return [row[0] for row in rows]


def open_transaction(
    database: Database, read_only: bool
) -> contextlib.AbstractAsyncContextManager[ReadOnlyTransaction]:
    return database.read_only_transaction() if read_only else database.transaction()


async def insert(database: Database, name: str, *, commit: bool) -> None:
    async with database.transaction() as transaction:
        await transaction.session.execute(text("INSERT INTO items VALUES (:n)"), {"n": name})
        if commit:
            await transaction.commit()


async def test_committed_work_stays_and_uncommitted_work_is_rolled_back(
    database: Database,
) -> None:
    await insert(database, "kept", commit=True)
    await insert(database, "dropped", commit=False)
    assert await names(database) == ["kept"]


async def test_an_error_rolls_everything_back(database: Database) -> None:
    async def fail_halfway() -> None:
        async with database.transaction() as transaction:
            await transaction.session.execute(text("INSERT INTO items VALUES ('half')"))
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        await fail_halfway()
    assert await names(database) == []


async def test_orm_and_core_writes_are_committed_together(with_notes: Database) -> None:
    database = with_notes
    async with database.transaction() as transaction:
        transaction.session.add(Note(id=1, body="orm"))
        await transaction.session.execute(text("INSERT INTO items VALUES ('core')"))
        await transaction.commit()
    assert await note_bodies(database) == ["orm"]
    assert await names(database) == ["core"]


async def test_an_uncommitted_orm_write_leaves_nothing(with_notes: Database) -> None:
    database = with_notes
    async with database.transaction() as transaction:
        transaction.session.add(Note(id=1, body="orm"))
        await transaction.session.flush()  # sent to the database, then rolled back
    assert await note_bodies(database) == []


# Refused writes raise the driver's error: "read-only transaction" on PostgreSQL, "readonly
# database" on SQLite.
_REFUSED = "read-only|readonly"


@pytest.mark.parametrize("ending", ["completes", "raises"])
async def test_a_read_only_session_refuses_writes(database: Database, ending: str) -> None:
    with contextlib.suppress(RuntimeError):
        async with database.read_only_transaction() as reader:
            with pytest.raises(DBAPIError, match=_REFUSED):
                await reader.session.execute(text("INSERT INTO items VALUES ('sneaky')"))
            if ending == "raises":
                raise RuntimeError("the block fails after the refused write")
    assert await names(database) == []


async def test_a_read_only_session_refuses_orm_writes(with_notes: Database) -> None:
    database = with_notes
    async with database.read_only_transaction() as reader:
        reader.session.add(Note(id=1, body="sneaky"))
        with pytest.raises(DBAPIError, match=_REFUSED):
            await reader.session.flush()
    assert await note_bodies(database) == []


@pytest.mark.parametrize("ending", ["completes", "raises"])
async def test_a_read_only_driver_refuses_writes_on_postgresql(
    postgres: Database, ending: str
) -> None:
    with contextlib.suppress(RuntimeError):
        async with postgres.read_only_transaction() as reader:
            assert reader.driver is not None
            with pytest.raises(asyncpg.exceptions.ReadOnlySQLTransactionError):
                await reader.driver.execute("INSERT INTO items VALUES ('sneaky')")
            if ending == "raises":
                raise RuntimeError("the block fails after the refused write")
    assert await names(postgres) == []


async def dbapi_connection(transaction: ReadOnlyTransaction) -> object:
    return (await (await transaction.session.connection()).get_raw_connection()).dbapi_connection


async def test_after_read_only_work_the_next_transaction_can_write(database: Database) -> None:
    async with database.read_only_transaction() as reader:
        with pytest.raises(DBAPIError, match=_REFUSED):
            await reader.session.execute(text("INSERT INTO items VALUES ('sneaky')"))
        read_on = await dbapi_connection(reader)
    async with database.transaction() as transaction:
        if database.dialect == "sqlite":  # the pooled connection the reader made read-only
            assert await dbapi_connection(transaction) is read_on
        await transaction.session.execute(text("INSERT INTO items VALUES ('written')"))
        await transaction.commit()
    assert await names(database) == ["written"]


async def test_driver_and_session_share_one_transaction_on_postgresql(postgres: Database) -> None:
    database = postgres
    async with database.transaction() as transaction:
        assert transaction.driver is not None
        await transaction.driver.execute("INSERT INTO items VALUES ('raw')")
        await transaction.session.execute(text("INSERT INTO items VALUES ('orm')"))
        seen = await transaction.driver.fetch("SELECT name FROM items ORDER BY name")
        assert [row[0] for row in seen] == ["orm", "raw"]
        assert await names(database) == []  # not visible outside before the commit
    assert await names(database) == []  # neither statement survived the rollback
    async with database.transaction() as transaction:
        assert transaction.driver is not None
        await transaction.driver.execute("INSERT INTO items VALUES ('raw')")
        await transaction.session.execute(text("INSERT INTO items VALUES ('orm')"))
        await transaction.commit()
    assert await names(database) == ["orm", "raw"]


async def test_a_statement_cut_off_by_cancellation_leaves_no_open_transaction(
    postgres: Database,
) -> None:
    database = postgres

    async def slow_insert() -> None:
        async with database.transaction() as transaction:
            assert transaction.driver is not None
            await transaction.driver.execute("INSERT INTO items VALUES ('cut')")
            await transaction.driver.execute("SELECT pg_sleep(5)")

    task = asyncio.create_task(slow_insert())
    await asyncio.sleep(0.3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # Every pooled connection is usable and none holds the insert in an open transaction.
    for _ in range(4):
        await insert(database, "next", commit=True)
    assert await names(database) == ["next"] * 4


async def backend_pid(database: Database, pause: float = 0) -> int:
    async with database.read_only_transaction() as transaction:
        assert transaction.driver is not None
        pid = int(await transaction.driver.fetchval("SELECT pg_backend_pid()"))
        if pause:
            await transaction.driver.execute(f"SELECT pg_sleep({pause})")
        return pid


async def test_readers_reuse_connections_up_to_the_pool_size(postgres: Database) -> None:
    first = await backend_pid(postgres)
    assert await backend_pid(postgres) == first  # handed back as it was, no reconnect
    # The fixture's pool size is 2: five concurrent readers share two connections.
    pids = await asyncio.gather(*(backend_pid(postgres, pause=0.05) for _ in range(5)))
    assert len(set(pids)) <= 2


async def test_a_reader_cut_off_mid_statement_is_not_reused(postgres: Database) -> None:
    before = await backend_pid(postgres)
    task = asyncio.create_task(backend_pid(postgres, pause=5))
    await asyncio.sleep(0.3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    after = await backend_pid(postgres)
    assert after != before  # the connection that was cut off was terminated
    assert await names(postgres) == []  # and the next reader works


async def test_a_reader_closed_by_the_server_while_idle_is_replaced(postgres: Database) -> None:
    idle = await backend_pid(postgres)
    admin = await asyncpg.connect(ADMIN_DSN)
    try:
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", idle)
    finally:
        await admin.close()
    await asyncio.sleep(0.2)  # the client notices the closed socket
    assert await backend_pid(postgres) != idle


async def test_a_pooled_writer_closed_by_the_server_is_replaced(postgres: Database) -> None:
    async def writer_pid() -> int:
        async with postgres.transaction() as transaction:
            assert transaction.driver is not None
            return int(await transaction.driver.fetchval("SELECT pg_backend_pid()"))

    pooled = await writer_pid()
    admin = await asyncpg.connect(ADMIN_DSN)
    try:
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", pooled)
    finally:
        await admin.close()
    await asyncio.sleep(0.2)
    assert await writer_pid() != pooled
    await insert(postgres, "after", commit=True)
    assert await names(postgres) == ["after"]


@pytest.mark.parametrize("read_only", [True, False], ids=["reader", "writer"])
async def test_an_unreachable_database_raises_unavailable(read_only: bool) -> None:
    with socket.socket() as probe:  # a port nothing listens on once the probe is closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    database = Database(f"postgresql+asyncpg://postgres@127.0.0.1:{port}/nowhere")

    async def open_one() -> None:
        async with open_transaction(database, read_only):
            pass

    try:
        with pytest.raises(Unavailable, match="retry with backoff"):
            await open_one()
    finally:
        await database.dispose()


@pytest.mark.parametrize("read_only", [True, False], ids=["reader", "writer"])
async def test_a_connection_lost_mid_statement_raises_unavailable(
    postgres: Database, read_only: bool
) -> None:
    async def sleep_on_a_connection(started: asyncio.Future[int]) -> None:
        async with open_transaction(postgres, read_only) as transaction:
            assert transaction.driver is not None
            started.set_result(int(await transaction.driver.fetchval("SELECT pg_backend_pid()")))
            await transaction.driver.execute("SELECT pg_sleep(5)")

    started: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    sleeper = asyncio.create_task(sleep_on_a_connection(started))
    admin = await asyncpg.connect(ADMIN_DSN)
    try:
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", await started)
    finally:
        await admin.close()
    with pytest.raises(Unavailable, match="retry with backoff"):
        await sleeper
    assert await names(postgres) == []  # the next transaction gets a working connection


async def test_other_errors_pass_through_unchanged(postgres: Database) -> None:
    async def query_a_missing_table() -> None:
        async with postgres.read_only_transaction() as transaction:
            assert transaction.driver is not None
            await transaction.driver.fetch("SELECT * FROM no_such_table")

    with pytest.raises(asyncpg.exceptions.UndefinedTableError):
        await query_a_missing_table()
