"""Per-client-address request limits on the login, registration and device endpoints."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from starlette.types import ASGIApp, Receive, Scope, Send

from api.middleware.security_headers import is_under
from api.problems import problem
from api.security.sliding_window import SlidingWindowLimiter


@dataclass(frozen=True)
class RateLimitRule:
    """Requests matching ``methods`` (empty: any) on ``paths`` or under ``prefixes``."""

    name: str
    limiter: SlidingWindowLimiter
    methods: frozenset[str] = frozenset()
    paths: frozenset[str] = frozenset()
    prefixes: tuple[str, ...] = ()

    def matches(self, method: str, path: str) -> bool:
        """Whether a request with ``method`` on ``path`` counts against this rule."""
        if self.methods and method not in self.methods:
            return False
        return path in self.paths or any(is_under(path, prefix) for prefix in self.prefixes)


def gateway_rules(
    *,
    auth_per_minute: int,
    device_per_minute: int,
    window_s: float = 60.0,
    auth_paths: Collection[str] = (
        "/auth/login",
        "/auth/register",
        "/auth/verify-email/resend",
        "/auth/password-reset",
        "/auth/password-reset/confirm",
        "/devices/register",
    ),
    device_prefixes: Sequence[str] = ("/devices", "/uploads"),
) -> list[RateLimitRule]:
    """The API's rules: tight on credential endpoints, generous on device traffic."""
    return [
        # Guessing passwords and provisioning codes: a person needs a handful a minute.
        RateLimitRule(
            name="auth",
            limiter=SlidingWindowLimiter(auth_per_minute, window_s),
            methods=frozenset({"POST"}),
            paths=frozenset(auth_paths),
        ),
        # An edge box uploading parts makes many requests; this only stops a runaway loop.
        RateLimitRule(
            name="devices",
            limiter=SlidingWindowLimiter(device_per_minute, window_s),
            prefixes=tuple(device_prefixes),
        ),
    ]


def client_address(scope: Scope) -> str:
    """The client's address: the peer, or the client a proxy in PV_TRUSTED_PROXIES names."""
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


class RateLimitMiddleware:
    """Answer 429 with ``Retry-After`` when any matching rule's window is full for the client.

    Per process, like `SlidingWindowLimiter`: the shared limits are the gateway's. Refused
    requests do not count, so a client that waits ``Retry-After`` seconds gets through.
    """

    def __init__(self, app: ASGIApp, *, rules: Sequence[RateLimitRule]) -> None:
        self.app = app
        self.rules = tuple(rules)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        matching = [rule for rule in self.rules if rule.matches(method, path)]
        if matching:
            address = client_address(scope)
            waits = [
                wait for rule in matching if (wait := rule.limiter.retry_after(address)) is not None
            ]
            if waits:
                refusal = problem(
                    429,
                    "Too many requests; try again later.",
                    headers={"Retry-After": str(max(waits))},
                )
                await refusal(scope, receive, send)
                return
            for rule in matching:
                rule.limiter.hit(address)
        await self.app(scope, receive, send)
