"""Use cases of the metering service; each owns its transaction through a unit of work."""
