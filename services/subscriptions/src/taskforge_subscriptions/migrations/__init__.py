"""Alembic migrations of the subscriptions service."""
