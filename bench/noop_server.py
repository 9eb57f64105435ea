"""Baseline server for the benchmarks: RecordUsage and CheckLimits of MeteringService answered
with an empty response at once — same grpc.aio stack and server factory, same messages, no work.
Usage: noop_server.py PORT"""

from __future__ import annotations

import sys
from typing import Any

import grpc
import uvloop

from taskforge.metering.v1 import metering_service_pb2 as pb
from taskforge_common.grpc.server import ServiceRegistration, serve_until_signal, start_server

SERVICE = "taskforge.metering.v1.MeteringService"


async def record_usage(request: pb.RecordUsageRequest, context: Any) -> pb.RecordUsageResponse:
    return pb.RecordUsageResponse()


async def check_limits(request: pb.CheckLimitsRequest, context: Any) -> pb.CheckLimitsResponse:
    return pb.CheckLimitsResponse()


def add_noop_service(server: grpc.aio.Server) -> None:
    handlers = {
        "RecordUsage": grpc.unary_unary_rpc_method_handler(
            record_usage,
            request_deserializer=pb.RecordUsageRequest.FromString,
            response_serializer=pb.RecordUsageResponse.SerializeToString,
        ),
        "CheckLimits": grpc.unary_unary_rpc_method_handler(
            check_limits,
            request_deserializer=pb.CheckLimitsRequest.FromString,
            response_serializer=pb.CheckLimitsResponse.SerializeToString,
        ),
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))


async def always_ready() -> bool:
    return True


async def main(port: int) -> None:
    running = await start_server(
        services=[ServiceRegistration(SERVICE, add_noop_service)],
        readiness=always_ready,
        port=port,
    )
    await serve_until_signal(running, grace=1)


if __name__ == "__main__":
    uvloop.run(main(int(sys.argv[1])))  # the same event loop as the services
