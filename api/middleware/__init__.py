"""Gateway concerns as pure ASGI middleware, one module per concern.

`api.gateway.install_gateway` stacks them; pure ASGI (not ``BaseHTTPMiddleware``) so streamed
bodies, in both directions, pass through without being buffered.
"""
