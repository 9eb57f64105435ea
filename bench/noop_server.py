"""Baseline server for the benchmarks: MeteringService whose methods answer an empty response at
once — same grpc.aio stack, same messages, no work. Usage: noop_server.py PORT"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from taskforge.metering.v1 import metering_service_pb2 as pb
from taskforge.metering.v1 import metering_service_pb2_grpc
from taskforge_common.grpc.server import ServiceRegistration, serve_until_signal, start_server


class NoopMetering(metering_service_pb2_grpc.MeteringServiceServicer):
    async def RecordUsage(self, request: Any, context: Any) -> pb.RecordUsageResponse:
        return pb.RecordUsageResponse()

    async def CheckLimits(self, request: Any, context: Any) -> pb.CheckLimitsResponse:
        return pb.CheckLimitsResponse()


async def main(port: int) -> None:
    servicer = NoopMetering()

    async def ready() -> bool:
        return True

    running = await start_server(
        services=[
            ServiceRegistration(
                "taskforge.metering.v1.MeteringService",
                lambda server: metering_service_pb2_grpc.add_MeteringServiceServicer_to_server(
                    servicer, server
                ),
            )
        ],
        readiness=ready,
        port=port,
    )
    await serve_until_signal(running, grace=1)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
