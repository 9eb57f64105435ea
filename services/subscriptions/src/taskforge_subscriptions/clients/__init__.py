"""Typed clients of peer services, each over one long-lived channel with a deadline on every
call."""
