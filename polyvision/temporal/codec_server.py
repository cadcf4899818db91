"""A codec server: the Temporal UI and CLI decode (and encode) payloads through it.

Temporal's remote codec protocol: ``POST /decode`` and ``POST /encode`` (also under a namespace
segment, ``/{namespace}/decode``, for the CLI's ``--codec-endpoint`` templating) take and return
``{"payloads": [...]}`` in protobuf JSON. It runs the same codec the clients use
(`polyvision.temporal.codec`), so the keys never leave our side.

Every call needs ``Authorization: Bearer <token>``: whoever reaches the server can decrypt. The
Temporal UI calls it from the operator's browser, so CORS lets the UI's origin in (preflight
requests carry no credentials and are answered without the token).

Run it with ``polyvision codec-server``; point the UI at it (its "Codec Server" setting, or
``TEMPORAL_CODEC_ENDPOINT`` of the UI server) and the CLI with
``temporal workflow show --codec-endpoint http://host:port --codec-auth "Bearer <token>"``.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence

from google.protobuf import json_format
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from temporalio.api.common.v1 import Payloads
from temporalio.converter import PayloadCodec

from polyvision.temporal.codec import PayloadCodecError

#: Headers the Temporal UI sends with codec requests.
_ALLOWED_HEADERS = ["Authorization", "Content-Type", "X-Namespace"]


def create_codec_app(
    codec: PayloadCodec, *, token: str, cors_origins: Sequence[str] = ()
) -> Starlette:
    """The codec server's ASGI app.

    Args:
        codec: The codec the clients use (`polyvision.temporal.codec.build_codec`).
        token: The bearer token every request must carry.
        cors_origins: Origins allowed to call from a browser: the Temporal UI's.

    Raises:
        ValueError: An empty token (an open codec server would decrypt for anyone).
    """
    if not token:
        raise ValueError("the codec server needs a bearer token (PV_CODEC_SERVER_TOKEN)")
    expected = f"Bearer {token}".encode()

    def authorized(request: Request) -> bool:
        given = request.headers.get("authorization", "").encode()
        return hmac.compare_digest(given, expected)

    async def run(request: Request, encode: bool) -> Response:
        if not authorized(request):
            return JSONResponse(
                {"error": "a bearer token is required"},
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        try:
            payloads = json_format.Parse(await request.body(), Payloads())
        except json_format.ParseError as exc:
            return JSONResponse({"error": f"not a payloads message: {exc}"}, status_code=400)
        try:
            if encode:
                result = await codec.encode(list(payloads.payloads))
            else:
                result = await codec.decode(list(payloads.payloads))
        except PayloadCodecError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        body = json_format.MessageToJson(Payloads(payloads=result))
        return Response(body, media_type="application/json")

    async def decode(request: Request) -> Response:
        return await run(request, encode=False)

    async def encode(request: Request) -> Response:
        return await run(request, encode=True)

    routes = [
        Route("/decode", decode, methods=["POST"]),
        Route("/encode", encode, methods=["POST"]),
        Route("/{namespace}/decode", decode, methods=["POST"]),
        Route("/{namespace}/encode", encode, methods=["POST"]),
    ]
    middleware = [
        Middleware(
            CORSMiddleware,
            allow_origins=list(cors_origins),
            allow_methods=["POST"],
            allow_headers=_ALLOWED_HEADERS,
            # The UI's `includeCredentials` sends cookies; allowed only for the listed origins.
            allow_credentials=True,
        )
    ]
    return Starlette(routes=routes, middleware=middleware)
