"""The OpenAPI 3.1 document of the server, served at ``/openapi.json``.

Its ``paths`` are built from the route table (``wire.routes``), the same table the server's
routes are built from, so every route is documented with every status it can answer; the
components (schemas and parameters) are data here. The schemathesis test checks the server
against this document.
"""

from __future__ import annotations

from typing import Any, Final

from ..core.ids import ID_ALPHABET, ID_PATTERN
from ..core.limits import MAX_PAGE
from ..wire.routes import ROUTES, Access, Answer, Endpoint

__all__ = ["openapi_document"]

_JSON: Final = "application/json"

_REASONS = {
    200: "OK",
    201: "Created",
    204: "No Content",
    400: "Malformed JSON, a body that is not an object, a bad If-Match header or a bad"
    " version to start a watch after",
    401: "No token, or a token that is not valid",
    403: "The token may not touch this device or route (a device token: or a job not registered)",
    404: "Not found",
    409: "The job is registered with a different schema",
    412: "The bucket's version is not the one If-Match expected",
    413: "The request body is over the size limit, or the device's storage quota would be",
    429: "Too many failed sign-ins from this address lately (see Retry-After), or this token"
    " already has as many open watches as the server allows",
    422: "An invalid value or id, a schema violation or an invalid schema",
    503: "The store is unavailable",
}


_TIME = {"type": "string", "format": "date-time", "description": "RFC 3339, UTC"}


# A JSON Schema (an object or a boolean), or null: any object, not one without properties.
_SCHEMA: Final = {"type": ["object", "boolean", "null"], "additionalProperties": True}
_ANY_OBJECT: Final = {"type": "object", "additionalProperties": True}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _content(media: str, schema: str | None) -> dict[str, Any]:
    if schema is not None:
        return {media: {"schema": _ref(schema)}}
    return {media: {"schema": _ANY_OBJECT if media == _JSON else {"type": "string"}}}


def _answer(answer: Answer) -> dict[str, Any]:
    response: dict[str, Any] = {"description": answer.description}
    if answer.status != 204:
        response["content"] = _content(answer.media, answer.schema)
    if answer.etag:
        response["headers"] = {
            "ETag": {"description": "The bucket's version, quoted", "schema": {"type": "string"}}
        }
    return response


def _operation(route: Endpoint) -> dict[str, Any]:
    public = route.access is Access.PUBLIC
    codes = sorted(set(route.errors if public else (400, 401, 403, 429, *route.errors)))
    errors = {
        str(code): {"description": _REASONS[code], "content": _content(_JSON, route.error_schema)}
        for code in codes
    }
    operation: dict[str, Any] = {
        "operationId": route.operation_id,
        "summary": route.summary,
        "responses": {str(route.ok.status): _answer(route.ok)} | errors,
    }
    names = (*route.path_params, *route.headers, *route.query)
    if names:
        operation["parameters"] = [{"$ref": f"#/components/parameters/{n}"} for n in names]
    if route.body is not None:
        media, schema = (route.body, None) if "/" in route.body else (_JSON, route.body)
        operation["requestBody"] = {"required": True, "content": _content(media, schema)}
    if public:
        operation["security"] = []
    return operation


def _components() -> dict[str, Any]:
    string_or_null = {"type": ["string", "null"]}
    job = {
        "type": "object",
        "required": ["job", "automation", "bucket_schema", "created_at", "updated_at"],
        "properties": {
            "job": {"type": "string"},
            "automation": string_or_null,
            "bucket_schema": _SCHEMA,
            "created_at": _TIME,
            "updated_at": _TIME,
        },
    }
    token = {
        "type": "object",
        "required": ["id", "device", "admin", "created_at"],
        "properties": {
            "id": {"type": "string"},
            "device": string_or_null,
            "admin": {"type": "boolean"},
            "created_at": _TIME,
        },
    }
    id_param = {"type": "string", "pattern": ID_PATTERN}
    return {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        "parameters": {
            "device": {
                "name": "device",
                "in": "path",
                "required": True,
                "description": f"Device id: 1-256 characters from {ID_ALPHABET}",
                "schema": id_param,
            },
            "job": {"name": "job", "in": "path", "required": True, "schema": id_param},
            "key": {"name": "key", "in": "path", "required": True, "schema": {"type": "string"}},
            "token": {
                "name": "token",
                "in": "path",
                "required": True,
                "schema": {"type": "string"},
            },
            "IfMatch": {
                "name": "If-Match",
                "in": "header",
                "required": False,
                "description": 'Write only if the bucket is at this version (an ETag like "3")',
                "schema": {"type": "string", "pattern": r'^(\*|(W/)?"[0-9]{1,18}"|[0-9]{1,18})$'},
            },
            "after": {"name": "after", "in": "query", "required": False, "schema": id_param},
            "expire_in": {
                "name": "expire_in",
                "in": "query",
                "required": False,
                "description": "Keys of this write that expire: a JSON object of seconds, such as"
                ' {"otp": 300}. A key written without one loses any expiry it had.',
                "schema": {"type": "string"},
            },
            "since": {
                "name": "since",
                "in": "query",
                "required": False,
                "description": "Start with every version after this one (default: the current)",
                "schema": {"type": "integer", "minimum": 0, "maximum": 2**63 - 1},
            },
            "LastEventID": {
                "name": "Last-Event-ID",
                "in": "header",
                "required": False,
                "description": "As `since`, sent by an EventSource that reconnects (wins)",
                "schema": {"type": "string", "pattern": "^[0-9]{1,19}$"},
            },
            "reveal": {
                "name": "reveal",
                "in": "query",
                "required": False,
                "description": "Show values of secret-looking keys (masked by default)",
                "schema": {"type": "string", "enum": ["true", "false"]},
            },
            "history": {
                "name": "history",
                "in": "query",
                "required": False,
                "description": "Include the buckets' history (default true)",
                "schema": {"type": "string", "enum": ["true", "false"]},
            },
            "version": {
                "name": "version",
                "in": "path",
                "required": True,
                "schema": {"type": "integer", "minimum": 0, "maximum": 2**63 - 1},
            },
            "limit": {
                "name": "limit",
                "in": "query",
                "required": False,
                "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": 100},
            },
        },
        "schemas": {
            "Bucket": {"type": "object", "additionalProperties": True},
            "Error": {
                "type": "object",
                "required": ["error", "code"],
                "properties": {
                    "error": {"type": "string"},
                    "code": {"type": "string"},
                    "path": {"type": "string"},
                    "rule": {"type": "string"},
                    "version": {"type": "integer"},
                },
            },
            "Change": {
                "type": "object",
                "required": ["version", "at", "actor", "added", "changed", "removed", "kept"],
                "properties": {
                    "version": {"type": "integer"},
                    "at": _TIME,
                    "actor": {"type": "string"},
                    "added": {"type": "array", "items": {"type": "string"}},
                    "changed": {"type": "array", "items": {"type": "string"}},
                    "removed": {"type": "array", "items": {"type": "string"}},
                    "kept": {"type": "boolean"},
                },
            },
            "Swept": {
                "type": "object",
                "required": ["swept"],
                "properties": {"swept": {"type": "integer"}},
            },
            "Expiries": {
                "type": "object",
                "required": ["expires"],
                "properties": {"expires": {"type": "object", "additionalProperties": _TIME}},
            },
            "ChangeList": {
                "type": "object",
                "required": ["changes"],
                "properties": {"changes": {"type": "array", "items": _ref("Change")}},
            },
            "Restore": {
                "type": "object",
                "required": ["version"],
                "properties": {"version": {"type": "integer", "minimum": 0}},
            },
            "DeleteKeys": {
                "type": "object",
                "required": ["keys"],
                "properties": {"keys": {"type": "array", "items": {"type": "string"}}},
            },
            "Device": {
                "type": "object",
                "required": ["device", "keys", "size", "updated_at", "jobs"],
                "properties": {
                    "device": {"type": "string"},
                    "keys": {"type": "integer"},
                    "size": {"type": "integer"},
                    "updated_at": _TIME,
                    "jobs": {"type": "array", "items": {"type": "string"}},
                },
            },
            "DeviceList": {
                "type": "object",
                "required": ["devices", "next"],
                "properties": {
                    "devices": {"type": "array", "items": _ref("Device")},
                    "next": string_or_null,
                },
            },
            "DeviceDeleted": {
                "type": "object",
                "required": ["device", "deleted_buckets"],
                "properties": {
                    "device": {"type": "string"},
                    "deleted_buckets": {"type": "integer"},
                },
            },
            "Job": job,
            "JobList": {
                "type": "object",
                "required": ["jobs"],
                "properties": {"jobs": {"type": "array", "items": _ref("Job")}},
            },
            "JobRegistration": {
                "type": "object",
                "properties": {
                    "automation": string_or_null,
                    "bucket_schema": _SCHEMA,
                    "replace_schema": {"type": "boolean"},
                },
            },
            "Token": token,
            "TokenCreated": {
                "allOf": [
                    _ref("Token"),
                    {
                        "type": "object",
                        "required": ["token"],
                        "properties": {"token": {"type": "string"}},
                    },
                ]
            },
            "TokenRequest": {"type": "object", "properties": {"device": string_or_null}},
            "TokenList": {
                "type": "object",
                "required": ["tokens"],
                "properties": {"tokens": {"type": "array", "items": _ref("Token")}},
            },
            "Imported": {
                "type": "object",
                "required": ["imported"],
                "properties": {"imported": {"type": "integer"}},
            },
            "Health": {
                "type": "object",
                "required": ["status"],
                "properties": {"status": {"type": "string"}, "error": {"type": "string"}},
            },
        },
    }


def openapi_document() -> dict[str, Any]:
    """The whole document (a fresh dict each call)."""
    paths: dict[str, dict[str, Any]] = {}
    for route in ROUTES:
        paths.setdefault(route.doc_path, {})[route.method.lower()] = _operation(route)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "devicebucket",
            "version": "1",
            "description": "Device buckets and job buckets for device-automation fleets.",
        },
        "security": [{"bearer": []}],
        "paths": paths,
        "components": _components(),
    }
