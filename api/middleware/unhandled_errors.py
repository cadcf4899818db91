"""A problem document for an exception no handler answered, inside the gateway's header layer."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.problems import problem


class UnhandledErrorMiddleware:
    """Answer an unhandled exception with a 500 problem, then let it propagate.

    Starlette's outermost ``ServerErrorMiddleware`` would answer too, but outside every user
    middleware, so its 500 would miss the security headers. Answering here keeps them; the
    exception is re-raised so that ``ServerErrorMiddleware`` still logs it through the app's
    500 handler (which sends nothing once a response has started) and the server sees it.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracked_send)
        except Exception:
            if not started:
                await problem(500, "An unexpected error occurred.")(scope, receive, send)
            raise
