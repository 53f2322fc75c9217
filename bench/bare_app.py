"""The reference for bench_http.py: bare Starlette serving the same bucket JSON from memory.

No auth, no validation, no store, no durability: the cost of the HTTP stack alone.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

BUCKETS: dict[str, dict[str, Any]] = {}


async def bucket(request: Request) -> Response:
    data = BUCKETS.setdefault(request.path_params["device"], {})
    if request.method == "PATCH":
        data.update(json.loads(await request.body()))
    return Response(json.dumps(data, separators=(",", ":")), media_type="application/json")


app = Starlette(routes=[Route("/v1/devices/{device}/bucket", bucket, methods=["GET", "PATCH"])])
