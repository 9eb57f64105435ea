"""Alembic migrations of the metering schema (shipped inside the package)."""
