"""Per-organisation ingest rate limit: a token bucket per organisation, in process memory.

Each replica limits on its own; the limit guards the service, it does not bill anything.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Collection
from datetime import timedelta

from taskforge_common.clock import Clock
from taskforge_common.errors import ResourceExhausted


class IngestRateLimiter:
    def __init__(
        self,
        clock: Clock,
        rate_per_second: int,
        burst: int | None = None,
        max_tracked: int = 100_000,
    ) -> None:
        if rate_per_second <= 0:
            raise ValueError("the ingest rate limit must be positive")
        self._clock = clock
        # Tokens are a float: they count requests, not money, and this runs on every call.
        self._rate = float(rate_per_second)
        self._burst = float(burst if burst is not None else rate_per_second)
        self._max_tracked = max_tracked
        # organisation → (tokens, refilled at); least recently used first.
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def acquire(self, organization_ids: Collection[str]) -> None:
        """Take one request's token from each organisation's bucket, or none if any is empty."""
        now = self._clock.now().timestamp()
        refilled = {org: self._refill(org, now) for org in organization_ids}
        empty = sorted(org for org, tokens in refilled.items() if tokens < 1)
        for org, tokens in refilled.items():
            self._buckets[org] = (tokens if empty else tokens - 1, now)
            self._buckets.move_to_end(org)
        while len(self._buckets) > self._max_tracked:
            self._buckets.popitem(last=False)
        if empty:
            raise ResourceExhausted(
                f"ingest rate limit of {self._rate:g} requests/s reached for organization "
                f"{', '.join(empty)}; retry with backoff",
                # The first token of an empty bucket is back after 1/rate seconds.
                retry_after=timedelta(seconds=1 / self._rate),
            )

    def _refill(self, organization_id: str, now: float) -> float:
        tokens, at = self._buckets.get(organization_id, (self._burst, now))
        return min(self._burst, tokens + max(0.0, now - at) * self._rate)
