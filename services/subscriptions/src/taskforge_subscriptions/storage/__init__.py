"""Storage of the subscriptions service: tables, repositories, units of work."""
