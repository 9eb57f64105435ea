"""TaskForge Billing metering service: usage ingest and limit checks."""
