"""Alembic environment of the metering service."""

from taskforge_common.db.alembic_env import run_migrations
from taskforge_metering.storage.tables import metadata

run_migrations(metadata)
