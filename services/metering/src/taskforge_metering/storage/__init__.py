"""SQLAlchemy tables, repositories and the unit of work of the metering service."""
