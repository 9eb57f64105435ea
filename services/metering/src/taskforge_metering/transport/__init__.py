"""The gRPC edge of the metering service: a thin servicer and its request/response mappers."""
