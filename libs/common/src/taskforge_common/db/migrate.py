"""Apply a service's Alembic migrations: `python -m taskforge_common.db.migrate <service> [url]`.

Each service ships its migrations inside its package (`taskforge_<service>/migrations`), so the
command works from a checkout and from an installed image alike. Without a URL it uses the
service's TASKFORGE_<SERVICE>_DATABASE_URL, whose default is the SQLite file under ./var/.
"""

from __future__ import annotations

import argparse
import logging

from alembic import command
from alembic.config import Config

from taskforge_common.config import env_str

SERVICES = ("metering", "subscriptions", "payments")


def default_database_url(service: str) -> str:
    return f"sqlite+aiosqlite:///./var/{service}.db"


def database_url(service: str) -> str:
    """The service's database URL from the environment, else the local SQLite default."""
    return env_str(f"TASKFORGE_{service.upper()}_DATABASE_URL", default_database_url(service))


def alembic_config(service: str, url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", f"taskforge_{service}:migrations")
    # Services may share one database in development: each keeps its own version table.
    config.set_main_option("version_table", f"alembic_version_{service}")
    config.attributes["database_url"] = url
    return config


def upgrade(service: str, url: str, revision: str = "head") -> None:
    """Blocking: runs its own event loop, so call it from a thread inside async code."""
    command.upgrade(alembic_config(service, url), revision)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("service", choices=SERVICES)
    parser.add_argument("url", nargs="?", help="database URL (default: from the environment)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    upgrade(args.service, args.url or database_url(args.service))


if __name__ == "__main__":
    main()
