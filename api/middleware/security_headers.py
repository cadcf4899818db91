"""Security headers, and a ``no-store`` default for JSON, on every response."""

from __future__ import annotations

from collections.abc import Collection

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

API_CSP = "default-src 'none'; frame-ancestors 'none'"
# Swagger UI and ReDoc pages are HTML that FastAPI renders with an inline bootstrap script and
# inline styles, loading their bundles from jsDelivr (ReDoc also Google Fonts and a blob: web
# worker). `default-src 'none'` would leave them blank, so these pages, and only they, get a
# policy that allows exactly those sources. They show nothing but the public OpenAPI document.
DOCS_CSP = (
    "default-src 'none'; "
    "script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net https://fonts.googleapis.com; "
    "font-src https://fonts.gstatic.com; "
    "img-src 'self' data: https://fastapi.tiangolo.com https://cdn.redoc.ly; "
    "connect-src 'self'; "
    "worker-src blob:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
HSTS = "max-age=63072000; includeSubDomains"
NO_STORE = "no-store"


def is_json(content_type: str | None) -> bool:
    """Whether a ``Content-Type`` is JSON (``application/json`` or any ``+json`` type)."""
    if not content_type:
        return False
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


def is_under(path: str, prefix: str) -> bool:
    """Whether ``path`` is ``prefix`` itself or below it (``/uploads`` and ``/uploads/x``)."""
    root = prefix.rstrip("/")
    return path == root or path.startswith(root + "/")


def security_headers(
    path: str,
    *,
    hsts: bool,
    docs_paths: Collection[str],
    cross_origin_prefixes: Collection[str],
) -> dict[str, str]:
    """The security headers a response to ``path`` gets unless it set them itself."""
    headers = {
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "no-referrer",
        "Content-Security-Policy": DOCS_CSP if path in docs_paths else API_CSP,
        # Delivery is fetched by players embedded on other sites; everything else stays ours.
        "Cross-Origin-Resource-Policy": (
            "cross-origin"
            if any(is_under(path, prefix) for prefix in cross_origin_prefixes)
            else "same-site"
        ),
    }
    if hsts:
        headers["Strict-Transport-Security"] = HSTS
    return headers


class SecurityHeadersMiddleware:
    """Add the security headers to every HTTP response, and ``Cache-Control: no-store`` to JSON.

    A header the route set itself wins: delivery sets its own ``Cache-Control``, for example.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        hsts: bool,
        docs_paths: Collection[str] = ("/docs", "/docs/oauth2-redirect", "/redoc"),
        cross_origin_prefixes: Collection[str] = ("/delivery",),
    ) -> None:
        self.app = app
        self.hsts = hsts
        self.docs_paths = frozenset(docs_paths)
        self.cross_origin_prefixes = tuple(cross_origin_prefixes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        defaults = security_headers(
            scope["path"],
            hsts=self.hsts,
            docs_paths=self.docs_paths,
            cross_origin_prefixes=self.cross_origin_prefixes,
        )

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in defaults.items():
                    headers.setdefault(name, value)
                # Tokens and tenant data travel as JSON: no cache may keep them by default.
                if "cache-control" not in headers and is_json(headers.get("content-type")):
                    headers["Cache-Control"] = NO_STORE
            await send(message)

        await self.app(scope, receive, send_with_headers)
