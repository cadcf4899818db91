"""In-memory sliding-window rate limits: the algorithm, and the login limits built on it.

`SlidingWindowLimiter` counts hits per key; `LoginLimiter` uses three of them for failed logins
(per account and client address, per address, per account), and the request-limit middleware
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

# Addresses remembered per account as ones its owner logged in from (the most recent).
MAX_KNOWN_ADDRESSES = 10


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

    def reset_prefix(self, prefix: str) -> None:
        """Forget every key that starts with ``prefix``."""
        for key in [key for key in self._hits if key.startswith(prefix)]:
            del self._hits[key]


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


class LoginLimiter:
    """Failed logins, limited so that guessing is slow and nobody can lock an owner out.

    The policy (also in `api.routes.auth`'s docstring):

    * **per account and address** (`per_account_and_address`, 5 a window): an address that
      fails an account's password that often waits. Only that address: the owner, logging in
      from their own address, is not refused because someone else guessed wrong.
    * **per address** (`per_address`, 20 a window): an address that fails across accounts
      (password spraying) waits for every account.
    * **per account** (`per_account`, 100 a window): failures from every address together.
      Past it, guessing from many addresses (a botnet) is refused, except from the addresses
      that logged in to the account successfully within `known_for_s`: the owner's usual
      addresses keep working during such an attack.

    Failures count alike for accounts that exist and ones that do not, so a refusal says
    nothing about which addresses have accounts. A successful login clears its own address's
    count for the account; `forgive` (a password reset) clears every count of the account.
    """

    def __init__(
        self,
        *,
        per_account_and_address: int = 5,
        per_address: int = 20,
        per_account: int = 100,
        window_s: float = 900.0,
        known_for_s: float = 30 * 24 * 3600.0,
        max_keys: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.pairs = SlidingWindowLimiter(
            per_account_and_address, window_s, max_keys=max_keys, clock=clock
        )
        self.addresses = SlidingWindowLimiter(per_address, window_s, max_keys=max_keys, clock=clock)
        self.accounts = SlidingWindowLimiter(per_account, window_s, max_keys=max_keys, clock=clock)
        self.known_for_s = known_for_s
        self.max_keys = max_keys
        self.clock = clock
        # account -> (address -> time of its last successful login), least recent first.
        self._known: OrderedDict[str, OrderedDict[str, float]] = OrderedDict()

    @staticmethod
    def _pair(account: str, address: str) -> str:
        # NUL cannot occur in an e-mail address or an IP address: the pair is unambiguous.
        return f"{account}\0{address}"

    def _is_known(self, account: str, address: str) -> bool:
        known = self._known.get(account)
        seen = None if known is None else known.get(address)
        return seen is not None and self.clock() - seen < self.known_for_s

    def retry_after(self, account: str, address: str) -> int | None:
        """Seconds until ``address`` may try ``account``'s password again; None: now."""
        checks = [self.pairs.retry_after(self._pair(account, address))]
        checks.append(self.addresses.retry_after(address))
        if not self._is_known(account, address):
            checks.append(self.accounts.retry_after(account))
        waits = [wait for wait in checks if wait is not None]
        return max(waits) if waits else None

    def failed(self, account: str, address: str) -> None:
        """Count a wrong password (or unknown account) for ``account`` from ``address``."""
        self.pairs.hit(self._pair(account, address))
        self.addresses.hit(address)
        self.accounts.hit(account)

    def succeeded(self, account: str, address: str) -> None:
        """``address`` logged in to ``account``: its failures there no longer count, and it is
        one of the account's known addresses from now on."""
        self.pairs.reset(self._pair(account, address))
        known = self._known.get(account)
        if known is None:
            known = self._known[account] = OrderedDict()
            while len(self._known) > self.max_keys:
                self._known.popitem(last=False)
        else:
            self._known.move_to_end(account)
        known[address] = self.clock()
        known.move_to_end(address)
        while len(known) > MAX_KNOWN_ADDRESSES:
            known.popitem(last=False)

    def forgive(self, account: str) -> None:
        """Clear every failure counted against ``account`` (its password was just reset)."""
        self.accounts.reset(account)
        self.pairs.reset_prefix(self._pair(account, ""))
