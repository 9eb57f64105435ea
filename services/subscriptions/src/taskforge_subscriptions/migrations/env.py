"""Alembic environment of the subscriptions service."""

from taskforge_common.db.alembic_env import run_migrations
from taskforge_subscriptions.storage.tables import metadata

run_migrations(metadata)
