"""The web layer: the ASGI app, its API handlers, authentication, the dashboard, metrics and
the OpenAPI document."""
