"""In-memory sliding-window rate limits: the algorithm, and the login limits built on it.

`SlidingWindowLimiter` counts hits per key; `LoginLimiter` uses two of them for failed logins,
per account and per client address, and the request-limit middleware
(`api.middleware.rate_limit`) one per rule, per client address.

Per process: each API replica counts on its own. With several replicas the limits at the
edge (APISIX ``limit-req`` / ``limit-count`` in ``deploy/apisix/routes.yaml``) are the
shared ones; this limiter is the backstop every replica enforces regardless.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable


class SlidingWindowLimiter:
    """At most ``limit`` hits per key in any ``window_s`` seconds; bounded in keys."""

    def __init__(
        self,
        limit: int,
        window_s: float,
        *,
        max_keys: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.window_s = window_s
        self.max_keys = max_keys
        self.clock = clock
        self._hits: OrderedDict[str, deque[float]] = OrderedDict()

    def _window(self, key: str, now: float) -> deque[float]:
        hits = self._hits.get(key)
        if hits is None:
            hits = deque()
            self._hits[key] = hits
            while len(self._hits) > self.max_keys:
                self._hits.popitem(last=False)
        else:
            self._hits.move_to_end(key)
        while hits and hits[0] <= now - self.window_s:
            hits.popleft()
        return hits

    def retry_after(self, key: str) -> int | None:
        """Seconds until ``key`` may try again, or None when it may now."""
        now = self.clock()
        hits = self._window(key, now)
        if len(hits) < self.limit:
            return None
        return max(1, math.ceil(hits[0] + self.window_s - now))

    def hit(self, key: str) -> None:
        now = self.clock()
        self._window(key, now).append(now)

    def reset(self, key: str) -> None:
        self._hits.pop(key, None)


class AccountAndAddressLimiter:
    """Hits counted per account (e-mail) and per client address; the longer wait wins."""

    def __init__(
        self,
        *,
        per_account: int,
        per_address: int,
        window_s: float = 900.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.accounts = SlidingWindowLimiter(per_account, window_s, clock=clock)
        self.addresses = SlidingWindowLimiter(per_address, window_s, clock=clock)

    def retry_after(self, account: str, address: str) -> int | None:
        """Seconds until ``account`` may try again from ``address``; None: now."""
        waits = [
            wait
            for wait in (self.accounts.retry_after(account), self.addresses.retry_after(address))
            if wait is not None
        ]
        return max(waits) if waits else None

    def hit(self, account: str, address: str) -> None:
        self.accounts.hit(account)
        self.addresses.hit(address)


class LoginLimiter(AccountAndAddressLimiter):
    """Failed logins counted per account (e-mail) and per client address."""

    def __init__(
        self,
        *,
        per_account: int = 5,
        per_address: int = 20,
        window_s: float = 900.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(
            per_account=per_account, per_address=per_address, window_s=window_s, clock=clock
        )

    def failed(self, account: str, address: str) -> None:
        self.hit(account, address)

    def succeeded(self, account: str) -> None:
        self.accounts.reset(account)
