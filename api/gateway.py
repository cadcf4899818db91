"""Gateway concerns in the app itself, and the finishing touches of the OpenAPI document.

The API enforces what the APISIX routes in ``deploy/apisix/routes.yaml`` also enforce at the
edge (CORS, security headers, body sizes, rate limits), so a pod reached without the gateway
is no weaker. Layers, outermost first, each a pure ASGI middleware in `api.middleware`:

1. security headers (so every answer below carries them, refusals and 500s included);
2. the unhandled-error answer (a 500 problem inside the header layer);
3. CORS (so a browser can read the 413s and 429s below);
4. rate limits;
5. body size limits;

then the app's own middleware (metrics) and routes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts
from starlette.routing import BaseRoute

from api.ingest.principal import get_uploader
from api.middleware.body_limit import BodyLimitMiddleware
from api.middleware.cors import CorsMiddleware
from api.middleware.rate_limit import RateLimitMiddleware, RateLimitRule, gateway_rules
from api.middleware.security_headers import SecurityHeadersMiddleware
from api.middleware.unhandled_errors import UnhandledErrorMiddleware
from api.openapi import problem_responses
from api.problems import PROBLEM_MEDIA_TYPE
from api.security import get_current_user
from api.security.device_auth import get_current_device
from polyvision.device_tokens import MAX_LIFETIME_S, TOKEN_TYPE
from polyvision.settings import Settings

USER_SCHEME = "bearerAuth"
DEVICE_SCHEME = "deviceToken"

SECURITY_SCHEMES: dict[str, dict[str, Any]] = {
    USER_SCHEME: {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": (
            "A user's access token: an RS256 JWT from `POST /auth/login` or "
            "`POST /auth/refresh`, valid 15 minutes. Its `kid` names a key published at "
            "`/.well-known/jwks.json`, so a gateway can verify it too."
        ),
    },
    DEVICE_SCHEME: {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": (
            "An edge device's token: a compact JWS the device signs with its own Ed25519 key "
            f'(header `{{"alg": "EdDSA", "typ": "{TOKEN_TYPE}", "kid": <device id>}}`), '
            f"living at most {MAX_LIFETIME_S} s. Every token is single-use: its `jti` is "
            "remembered until it expires and a replay is refused. A revoked device is refused."
        ),
    },
}

# The dependencies that authenticate a caller, and the schemes each one accepts (any one).
AUTH_DEPENDENCIES: dict[Callable[..., Any], tuple[str, ...]] = {
    get_current_user: (USER_SCHEME,),
    get_current_device: (DEVICE_SCHEME,),
    # The upload routes take an edge box's token or a member's access token.
    get_uploader: (DEVICE_SCHEME, USER_SCHEME),
}

VALIDATION_PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status", "errors"],
    "properties": {
        "type": {"type": "string", "example": "about:blank"},
        "title": {"type": "string", "example": "Invalid request"},
        "status": {"type": "integer", "example": 422},
        "detail": {"type": "string", "example": "The request is not valid."},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "loc": {"type": "array", "items": {"type": ["string", "integer"]}},
                    "msg": {"type": "string"},
                    "type": {"type": "string"},
                },
            },
        },
    },
}
_FASTAPI_VALIDATION_SCHEMAS = ("HTTPValidationError", "ValidationError")
_HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def install_gateway(app: FastAPI, settings: Settings) -> None:
    """Add the gateway middleware and the OpenAPI finishing to ``app``.

    Called before the routers are included; the OpenAPI document is built lazily, so it sees
    every route.
    """
    # add_middleware puts each new layer outside the previous ones: innermost first.
    app.add_middleware(
        BodyLimitMiddleware,
        limit=settings.max_request_bytes,
        large_limit=settings.max_part_bytes,
    )
    rules = gateway_rules(
        auth_per_minute=settings.rate_limit_auth_per_minute,
        device_per_minute=settings.rate_limit_device_per_minute,
    )
    app.add_middleware(RateLimitMiddleware, rules=rules)
    app.add_middleware(CorsMiddleware, origins=settings.cors_origins)
    app.add_middleware(UnhandledErrorMiddleware)
    docs_paths = [
        path for path in (app.docs_url, app.swagger_ui_oauth2_redirect_url, app.redoc_url) if path
    ]
    app.add_middleware(
        SecurityHeadersMiddleware,
        hsts=settings.api_public_url.lower().startswith("https://"),
        docs_paths=docs_paths,
    )
    install_openapi(app, rules)


def install_openapi(app: FastAPI, rules: Sequence[RateLimitRule] = ()) -> None:
    """Make ``app.openapi()`` return FastAPI's document completed by `complete_openapi`."""

    def openapi() -> dict[str, Any]:
        # FastAPI caches the document and rebuilds it when routes change; the completion is
        # idempotent, so applying it to a cached document again changes nothing.
        return complete_openapi(FastAPI.openapi(app), app.routes, rules)

    app.openapi = openapi  # type: ignore[method-assign]


def complete_openapi(
    schema: dict[str, Any],
    routes: Iterable[BaseRoute],
    rules: Sequence[RateLimitRule] = (),
) -> dict[str, Any]:
    """Add what FastAPI cannot infer from our routes to ``schema`` (in place) and return it.

    * the two bearer schemes, and each operation's ``security`` from its auth dependencies
      (ours are plain dependencies, not FastAPI security classes, so FastAPI sees none);
    * validation errors (422) documented as the problem documents the API actually sends,
      instead of FastAPI's ``HTTPValidationError``;
    * 400 on operations with a request body: FastAPI answers it, before any validation, to a
      body it cannot decode (JSON that is not UTF-8);
    * the gateway's own answers: 413 on operations with a request body, 429 (with
      ``Retry-After``) on operations a rate limit ``rules`` covers.
    """
    components = schema.setdefault("components", {})
    components.setdefault("securitySchemes", {}).update(SECURITY_SCHEMES)
    paths: dict[str, dict[str, Any]] = schema.get("paths", {})
    # Included routers hold their routes in contexts carrying the effective prefix and
    # router-level dependencies; iterate those, not the original routes.
    for context in iter_route_contexts(list(routes)):
        if not isinstance(context.original_route, APIRoute) or not context.include_in_schema:
            continue
        schemes = auth_schemes(context.dependant)
        path_item = paths.get(str(context.path_format), {})
        for method in context.methods or ():
            operation = path_item.get(method.lower())
            if operation is None:
                continue
            if schemes and "security" not in operation:
                # One requirement per scheme: a caller presents any one of them.
                operation["security"] = [{name: []} for name in schemes]
    for path, path_item in paths.items():
        for method in _HTTP_METHODS:
            if (operation := path_item.get(method)) is None:
                continue
            _validation_as_problem(operation)
            responses = operation.setdefault("responses", {})
            if "requestBody" in operation:
                responses.setdefault("400", _problem_response(400))
                responses.setdefault("413", _problem_response(413))
            if any(rule.matches(method.upper(), path) for rule in rules):
                responses.setdefault("429", _RATE_LIMITED)
    schemas: dict[str, Any] = components.get("schemas", {})
    if not _references(schema, _FASTAPI_VALIDATION_SCHEMAS):
        for name in _FASTAPI_VALIDATION_SCHEMAS:
            schemas.pop(name, None)
    return schema


def auth_schemes(dependant: Dependant) -> list[str]:
    """The security schemes an endpoint's dependency tree accepts, any one of them being
    enough (empty: public). No route asks for two credentials at once."""
    found: list[str] = []
    pending = [dependant]
    while pending:
        current = pending.pop()
        accepted = AUTH_DEPENDENCIES.get(current.call, ()) if current.call is not None else ()
        found.extend(scheme for scheme in accepted if scheme not in found)
        pending.extend(current.dependencies)
    return found


def _problem_response(status: int) -> dict[str, Any]:
    return problem_responses(status)[status]


_RATE_LIMITED: dict[str, Any] = {
    **_problem_response(429),
    "headers": {
        "Retry-After": {
            "description": "Seconds to wait before the next attempt.",
            "schema": {"type": "integer", "minimum": 1},
        }
    },
}


def _validation_as_problem(operation: dict[str, Any]) -> None:
    response = operation.get("responses", {}).get("422")
    if response is None:
        return
    content: dict[str, Any] = response.setdefault("content", {})
    json_schema = content.get("application/json", {}).get("schema", {})
    if json_schema.get("$ref", "").endswith("/HTTPValidationError"):
        del content["application/json"]
        content[PROBLEM_MEDIA_TYPE] = {"schema": VALIDATION_PROBLEM_SCHEMA}
        response["description"] = "Validation error"


def _references(schema: dict[str, Any], names: Iterable[str]) -> bool:
    """Whether anything but the ``names`` schemas themselves refers to one of ``names``."""
    excluded = set(names)
    components: dict[str, Any] = schema.get("components", {})
    rest = [
        {key: value for key, value in schema.items() if key != "components"},
        {key: value for key, value in components.items() if key != "schemas"},
        {key: value for key, value in components.get("schemas", {}).items() if key not in excluded},
    ]
    text = json.dumps(rest)
    return any(f'"#/components/schemas/{name}"' in text for name in excluded)
