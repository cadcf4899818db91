"""Request body size limits: by ``Content-Length`` up front and by counting streamed chunks."""

from __future__ import annotations

from collections.abc import Sequence

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.problems import problem


class RequestTooLarge(HTTPException):
    """The body grew past its limit while the app was reading it.

    An ``HTTPException`` on purpose: FastAPI re-raises those from body parsing (anything else
    becomes a 400), and the app's handler turns it into the 413 problem.
    """

    def __init__(self, limit: int) -> None:
        super().__init__(413, too_large_detail(limit))


def too_large_detail(limit: int) -> str:
    """The problem detail of a 413 for ``limit`` bytes."""
    return f"The request body is larger than {limit} bytes."


def declared_length(scope: Scope) -> int | None:
    """The request's ``Content-Length``, or None when absent (chunked) or malformed."""
    value = Headers(scope=scope).get("content-length")
    if value is None or not value.isdigit():
        return None
    return int(value)


class BodyLimitMiddleware:
    """Refuse request bodies over ``limit`` bytes (``large_limit`` on ``large_routes``).

    ``large_routes`` are ``(method, path prefix)`` pairs: the object and upload-part routes
    whose bodies are recording parts. A declared ``Content-Length`` over the limit is answered
    413 before the body is read; a body without one (chunked) is counted as it streams and the
    read that crosses the limit fails, so no more than ``limit`` bytes plus one chunk are read.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        limit: int,
        large_limit: int,
        large_routes: Sequence[tuple[str, str]] = (("PUT", "/objects/"),),
    ) -> None:
        self.app = app
        self.limit = limit
        self.large_limit = large_limit
        self.large_routes = tuple((method.upper(), prefix) for method, prefix in large_routes)

    def limit_for(self, method: str, path: str) -> int:
        """The body limit of a request, chosen before routing by method and path."""
        for large_method, prefix in self.large_routes:
            if method == large_method and path.startswith(prefix):
                return self.large_limit
        return self.limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["method"], scope["path"])
        declared = declared_length(scope)
        if declared is not None and declared > limit:
            await problem(413, too_large_detail(limit))(scope, receive, send)
            return
        received = 0
        exceeded = False
        started = False
        replaced = False

        async def limited_receive() -> Message:
            nonlocal received, exceeded
            if exceeded:
                raise RequestTooLarge(limit)
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    raise RequestTooLarge(limit)
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started, replaced
            if replaced:
                return
            if message["type"] == "http.response.start":
                started = True
                # The app may have caught the failed read and answered something else (a 400
                # "invalid body", a 409 from a store): the truth is that the body was too large.
                if exceeded and message["status"] != 413:
                    replaced = True
                    await problem(413, too_large_detail(limit))(scope, receive, send)
                    return
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except RequestTooLarge:
            if started:
                raise
            await problem(413, too_large_detail(limit))(scope, receive, send)
