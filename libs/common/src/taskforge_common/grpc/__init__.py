"""gRPC plumbing shared by the services: server factory, channels, error mapping and auth."""
