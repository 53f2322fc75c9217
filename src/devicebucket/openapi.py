"""The OpenAPI 3.1 document of the server, served at ``/openapi.json``.

Written by hand next to the routes so every status a route can answer is listed; the
schemathesis test checks the server against it.
"""

from __future__ import annotations

from typing import Any

from .rules import ID_ALPHABET

__all__ = ["openapi_document"]

_ID_PATTERN = r"^[A-Za-z0-9._\-:@]{1,256}$"
_JSON = "application/json"

_REASONS = {
    200: "OK",
    201: "Created",
    204: "No Content",
    400: "Malformed JSON, a body that is not an object, or a bad If-Match header",
    401: "No token, or a token that is not valid",
    403: "The token may not touch this device or route",
    404: "Not found",
    409: "The job is registered with a different schema",
    412: "The bucket's version is not the one If-Match expected",
    413: "The request body is over the size limit",
    422: "An invalid value or id, a schema violation or an invalid schema",
    503: "The store is unavailable",
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _error(status: int) -> dict[str, Any]:
    return {"description": _REASONS[status], "content": {_JSON: {"schema": _ref("Error")}}}


def _ok(schema: dict[str, Any], description: str, *, etag: bool = False) -> dict[str, Any]:
    response: dict[str, Any] = {"description": description, "content": {_JSON: {"schema": schema}}}
    if etag:
        response["headers"] = {
            "ETag": {"description": "The bucket's version, quoted", "schema": {"type": "string"}}
        }
    return response


def _operation(
    summary: str,
    ok: dict[str, Any],
    errors: tuple[int, ...],
    *,
    ok_status: int = 200,
    body: dict[str, Any] | None = None,
    parameters: tuple[str, ...] = (),
    public: bool = False,
) -> dict[str, Any]:
    codes = errors if public else (400, 401, 403, *errors)
    operation: dict[str, Any] = {
        "summary": summary,
        "responses": {str(ok_status): ok} | {str(c): _error(c) for c in sorted(set(codes))},
    }
    if parameters:
        operation["parameters"] = [{"$ref": f"#/components/parameters/{p}"} for p in parameters]
    if body is not None:
        operation["requestBody"] = {"required": True, "content": body}
    if public:
        operation["security"] = []
    return operation


def _bucket_operations(scope: tuple[str, ...], what: str) -> dict[str, dict[str, Any]]:
    bucket = _ok(_ref("Bucket"), f"The {what} after the request", etag=True)
    conditional = (*scope, "IfMatch")
    write_errors = (404, 412, 422, 503)
    return {
        "bucket": {
            "get": _operation(f"Read the {what}", bucket, (404, 422, 503), parameters=scope),
            "patch": _operation(
                f"Merge keys into the {what} (shallow)",
                bucket,
                (*write_errors, 413),
                body={_JSON: {"schema": _ref("Bucket")}},
                parameters=conditional,
            ),
            "delete": _operation(
                f"Remove every key of the {what}", bucket, write_errors, parameters=conditional
            ),
        },
        "key": {
            "delete": _operation(
                f"Remove one key of the {what}",
                bucket,
                write_errors,
                parameters=(*conditional, "key"),
            )
        },
        "delete-keys": {
            "post": _operation(
                f"Remove several keys of the {what} at once",
                bucket,
                (*write_errors, 413),
                body={_JSON: {"schema": _ref("DeleteKeys")}},
                parameters=conditional,
            )
        },
        "history": {
            "get": _operation(
                f"The changes of the {what}, newest first (admin)",
                _ok(_ref("ChangeList"), "Version, time, actor and the keys each change touched"),
                (404, 422, 503),
                parameters=(*scope, "limit"),
            )
        },
        "history-version": {
            "get": _operation(
                f"The {what} as it was at a kept version (admin)",
                _ok(_ref("Bucket"), f"The {what} at that version", etag=True),
                (404, 422, 503),
                parameters=(*scope, "version", "reveal"),
            )
        },
        "restore": {
            "post": _operation(
                f"Restore the {what} to a kept version, as a new version (admin)",
                bucket,
                (*write_errors, 413),
                body={_JSON: {"schema": _ref("Restore")}},
                parameters=conditional,
            )
        },
    }


def _components() -> dict[str, Any]:
    string_or_null = {"type": ["string", "null"]}
    job = {
        "type": "object",
        "required": ["job", "automation", "bucket_schema", "created_at", "updated_at"],
        "properties": {
            "job": {"type": "string"},
            "automation": string_or_null,
            "bucket_schema": {"type": ["object", "boolean", "null"]},
            "created_at": {"type": "number"},
            "updated_at": {"type": "number"},
        },
    }
    token = {
        "type": "object",
        "required": ["id", "device", "admin", "created_at"],
        "properties": {
            "id": {"type": "string"},
            "device": string_or_null,
            "admin": {"type": "boolean"},
            "created_at": {"type": "number"},
        },
    }
    id_param = {"type": "string", "pattern": _ID_PATTERN}
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
            "reveal": {
                "name": "reveal",
                "in": "query",
                "required": False,
                "description": "Show values of secret-looking keys (masked by default)",
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
                "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100},
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
                    "at": {"type": "number"},
                    "actor": {"type": "string"},
                    "added": {"type": "array", "items": {"type": "string"}},
                    "changed": {"type": "array", "items": {"type": "string"}},
                    "removed": {"type": "array", "items": {"type": "string"}},
                    "kept": {"type": "boolean"},
                },
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
                    "updated_at": {"type": "number"},
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
                    "bucket_schema": {"type": ["object", "boolean", "null"]},
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
    device = _bucket_operations(("device",), "device bucket")
    job = _bucket_operations(("device", "job"), "job bucket")
    ndjson = {"application/x-ndjson": {"schema": {"type": "string"}}}
    paths: dict[str, Any] = {
        "/v1/devices/{device}/bucket": device["bucket"],
        "/v1/devices/{device}/bucket/keys/{key}": device["key"],
        "/v1/devices/{device}/bucket/delete-keys": device["delete-keys"],
        "/v1/devices/{device}/bucket/history": device["history"],
        "/v1/devices/{device}/bucket/history/{version}": device["history-version"],
        "/v1/devices/{device}/bucket/restore": device["restore"],
        "/v1/devices/{device}/jobs/{job}/bucket": job["bucket"],
        "/v1/devices/{device}/jobs/{job}/bucket/keys/{key}": job["key"],
        "/v1/devices/{device}/jobs/{job}/bucket/delete-keys": job["delete-keys"],
        "/v1/devices/{device}/jobs/{job}/bucket/history": job["history"],
        "/v1/devices/{device}/jobs/{job}/bucket/history/{version}": job["history-version"],
        "/v1/devices/{device}/jobs/{job}/bucket/restore": job["restore"],
        "/v1/devices": {
            "get": _operation(
                "List devices (admin)",
                _ok(_ref("DeviceList"), "A page of devices, ordered by id"),
                (422, 503),
                parameters=("after", "limit"),
            )
        },
        "/v1/devices/{device}": {
            "delete": _operation(
                "Remove every bucket of a device (admin)",
                _ok(_ref("DeviceDeleted"), "How many buckets were removed"),
                (404, 422, 503),
                parameters=("device",),
            )
        },
        "/v1/devices/{device}/tokens": {
            "post": _operation(
                "Issue a token for a device (admin); the secret is shown once",
                _ok(_ref("TokenCreated"), "The new token"),
                (404, 422, 503),
                ok_status=201,
                parameters=("device",),
            )
        },
        "/v1/jobs": {
            "get": _operation(
                "List jobs (admin)", _ok(_ref("JobList"), "Every registered job"), (503,)
            )
        },
        "/v1/jobs/{job}": {
            "get": _operation(
                "Read a job and its bucket schema",
                _ok(_ref("Job"), "The job"),
                (404, 422, 503),
                parameters=("job",),
            ),
            "put": _operation(
                "Register a job with its bucket schema (admin)",
                _ok(_ref("Job"), "The job as registered"),
                (404, 409, 413, 422, 503),
                body={_JSON: {"schema": _ref("JobRegistration")}},
                parameters=("job",),
            ),
        },
        "/v1/tokens": {
            "get": _operation("List tokens (admin)", _ok(_ref("TokenList"), "Every token"), (503,)),
            "post": _operation(
                "Issue a device token, or an admin token with device null (admin)",
                _ok(_ref("TokenCreated"), "The new token; the secret is shown once"),
                (413, 422, 503),
                ok_status=201,
                body={_JSON: {"schema": _ref("TokenRequest")}},
            ),
        },
        "/v1/tokens/{token}": {
            "delete": _operation(
                "Revoke a token by id (admin)",
                {"description": "Revoked"},
                (404, 503),
                ok_status=204,
                parameters=("token",),
            )
        },
        "/v1/whoami": {
            "get": _operation("The token this request used", _ok(_ref("Token"), "The token"), ())
        },
        "/v1/export": {
            "get": _operation(
                "Export everything as JSON Lines (admin)",
                {"description": "The export", "content": ndjson},
                (503,),
            )
        },
        "/v1/import": {
            "post": _operation(
                "Import an export, all or nothing (admin)",
                _ok(_ref("Imported"), "How many records were written"),
                (413, 422, 503),
                body=ndjson,
            )
        },
        "/healthz": {
            "get": _operation(
                "Is the store reachable?",
                _ok(_ref("Health"), "Reachable"),
                (),
                public=True,
            )
            | {
                "responses": {
                    "200": _ok(_ref("Health"), "Reachable"),
                    "503": _ok(_ref("Health"), "Unreachable"),
                }
            }
        },
        "/metrics": {
            "get": _operation(
                "Prometheus metrics",
                {
                    "description": "Metrics",
                    "content": {"text/plain": {"schema": {"type": "string"}}},
                },
                (),
                public=True,
            )
        },
    }
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
