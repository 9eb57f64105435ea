"""Shared runtime of the TaskForge Billing services."""
