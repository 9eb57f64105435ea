"""Pure metering rules: meters, event validation, limits, thresholds, aggregation.

Nothing here performs I/O, reads the clock or imports grpc, protobuf, SQLAlchemy or telemetry.
"""
