"""Async database access shared by the services: engine, column types, migrations."""
