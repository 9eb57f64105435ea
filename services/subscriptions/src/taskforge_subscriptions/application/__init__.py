"""Use cases of the subscriptions service: commands in, the unit of work owns the transaction."""
