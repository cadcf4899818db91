"""CORS: the configured web origins for the API, any origin for signed delivery URLs."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from api.middleware.security_headers import is_under
from api.problems import problem

API_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
API_HEADERS = ("Authorization", "Content-Type", "Range")
EXPOSED_HEADERS = ("ETag", "Content-Range", "Content-Length", "Retry-After")
DELIVERY_METHODS = ("GET", "HEAD", "OPTIONS")
DELIVERY_HEADERS = ("Range",)


class ProblemCORSMiddleware(CORSMiddleware):
    """Starlette's CORS, with a refused preflight answered as a problem document."""

    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code < 400:
            return response
        headers = {
            name: value
            for name, value in response.headers.items()
            if name not in ("content-length", "content-type")
        }
        detail = bytes(response.body).decode() + "."
        return problem(response.status_code, detail, headers=headers)


class CorsMiddleware:
    """Two CORS policies chosen by path.

    The API answers browsers on ``origins`` only (none when empty: no wildcard), without
    credentials since tokens travel in ``Authorization``, never in cookies. Delivery paths
    answer every origin: their URLs are signed and expiring, so the URL is the capability, and
    players embedded on customers' sites must read manifests and segments.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        origins: Sequence[str],
        public_prefixes: Collection[str] = ("/delivery",),
        max_age: int = 600,
    ) -> None:
        self.public_prefixes = tuple(public_prefixes)
        self.api: ASGIApp = (
            ProblemCORSMiddleware(
                app,
                allow_origins=list(origins),
                allow_methods=API_METHODS,
                allow_headers=API_HEADERS,
                allow_credentials=False,
                expose_headers=EXPOSED_HEADERS,
                max_age=max_age,
            )
            if origins
            else app
        )
        self.public = ProblemCORSMiddleware(
            app,
            allow_origins=["*"],
            allow_methods=DELIVERY_METHODS,
            allow_headers=DELIVERY_HEADERS,
            allow_credentials=False,
            expose_headers=EXPOSED_HEADERS,
            max_age=86400,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and any(
            is_under(scope["path"], prefix) for prefix in self.public_prefixes
        ):
            await self.public(scope, receive, send)
            return
        await self.api(scope, receive, send)
