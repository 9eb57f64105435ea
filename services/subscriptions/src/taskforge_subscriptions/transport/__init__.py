"""The gRPC edge of the subscriptions service: thin servicer, request and response mappers."""
