"""`make run`: every service that exists, locally, in the foreground.

Databases default to SQLite files under ./var/ and are migrated first. Without
TASKFORGE_AUTH_JWT_SECRET a random secret is made for this run only (nothing is written to
disk), and a development admin token signed with it is printed so the services can be called.
Ctrl-C (or SIGTERM) stops every service gracefully.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

from taskforge_common.db import migrate
from taskforge_common.grpc.auth import Scope, issue_token

# (service, its port variable, default port), in start order: a service starts after the peers
# it calls. Later services join this list.
SERVICES = [
    ("metering", "TASKFORGE_METERING_PORT", 50051),
    ("subscriptions", "TASKFORGE_SUBSCRIPTIONS_PORT", 50052),
]


def main() -> int:
    env = dict(os.environ)
    if not env.get("TASKFORGE_AUTH_JWT_SECRET"):
        env["TASKFORGE_AUTH_JWT_SECRET"] = secrets.token_urlsafe(48)
        print("TASKFORGE_AUTH_JWT_SECRET is not set: using a random secret for this run only.")
    os.environ.update(env)
    for service, _, _ in SERVICES:
        url = migrate.database_url(service)
        print(f"migrating {service} ({url.split('@')[-1]})")
        migrate.upgrade(service, url)

    for service, port_var, default_port in SERVICES:
        env.setdefault(port_var, str(default_port))
        env.setdefault(f"TASKFORGE_{service.upper()}_HOST", "127.0.0.1")
    # Subscriptions reads usage from, and pushes entitlements to, the metering started here.
    env.setdefault("TASKFORGE_METERING_ADDRESS", f"127.0.0.1:{env['TASKFORGE_METERING_PORT']}")

    children = []
    for service, _, _ in SERVICES:
        children.append(subprocess.Popen([sys.executable, "-m", f"taskforge_{service}"], env=env))

    token = issue_token(
        env["TASKFORGE_AUTH_JWT_SECRET"],
        subject="dev-admin",
        scopes=[scope.value for scope in Scope],
        ttl=timedelta(hours=12),
        now=datetime.now(UTC),
    )
    print()
    for service, port_var, _ in SERVICES:
        print(f"  {service:<14} grpc://127.0.0.1:{env[port_var]}")
    print(f"\n  dev admin token (12 h):\n  {token}\n")
    print("Press Ctrl-C to stop.")

    def stop(_signal: int, _frame: object) -> None:
        for child in children:
            child.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    while all(child.poll() is None for child in children):
        time.sleep(0.5)
    stop(signal.SIGTERM, None)  # one service ended: stop the others too
    return max(child.wait() for child in children)


if __name__ == "__main__":
    sys.exit(main())
