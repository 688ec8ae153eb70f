"""The OpenAPI 3.1 document of the API, served at ``/v1/openapi.json``.

Written as data, next to the code it describes; a test checks that every route
of the app is here and every path here is a route, and schemathesis sends what
it describes at the app.
"""

from __future__ import annotations

import copy
from typing import Any

from imagen_core._version import __version__
from imagen_core.models import MAX_PROMPT_CHARS

MAX_SEED = 2**64 - 1


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": _ref("Error")}},
    }


def _json(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


NULLABLE_STR = {"type": ["string", "null"]}
NULLABLE_NUM = {"type": ["number", "null"]}
NULLABLE_INT = {"type": ["integer", "null"]}

_GENERATE_PROPERTIES: dict[str, Any] = {
    "prompt": {"type": "string", "minLength": 1, "maxLength": MAX_PROMPT_CHARS},
    "backend": {
        "type": ["string", "null"],
        "description": "a backend instance of GET /v1/backends; null or absent: the default",
    },
    "width": {"type": "integer", "minimum": 1, "maximum": 8192, "default": 1024},
    "height": {"type": "integer", "minimum": 1, "maximum": 8192, "default": 1024},
    "seed": {
        "type": "integer",
        "minimum": 0,
        "maximum": MAX_SEED,
        "default": 0,
        "description": "0 lets the backend pick one (the one used is reported)",
    },
    "steps": {
        "type": "integer",
        "minimum": 0,
        "maximum": 10000,
        "default": 0,
        "description": "0: the backend's default",
    },
    "style": {"type": ["string", "null"], "description": "a style of GET /v1/backends"},
    "negative": {"type": "string", "maxLength": MAX_PROMPT_CHARS, "default": ""},
    "images": {
        "type": "array",
        "items": _ref("InputBody"),
        "description": "input images: the first is edited (or the init image), the others "
        "are references. PNG, JPEG or WebP, at most 50 MB and 8192 px a side each",
    },
    "mask": {
        "oneOf": [_ref("InputBody"), {"type": "null"}],
        "description": "white = repaint; the first image's size, or its shape: a mask of "
        "another size is scaled to the image, as the CLI scales it (said in the answer's "
        "warnings); one of another shape is a 422",
    },
    "strength": {
        "type": ["number", "null"],
        "minimum": 0,
        "maximum": 1,
        "description": "how far from the first image to go; null: the backend's default",
    },
}

#: The multipart form of the same body: files image (repeatable) and mask, or
#: gallery ids image_id and mask_id; the other fields as text.
_FORM_PROPERTIES: dict[str, Any] = {
    **{k: v for k, v in _GENERATE_PROPERTIES.items() if k not in ("images", "mask")},
    "image": {"type": "array", "items": {"type": "string", "format": "binary"}},
    "image_id": {
        "type": "array",
        "items": {"type": "string"},
        "description": "an image of the gallery (its id), in order among the files",
    },
    "mask": {"type": "string", "format": "binary"},
    "mask_id": {"type": "string"},
}

_CHANGED = "what imagen changed on the way, one line each (a mask scaled to the image)"
_WARNINGS: dict[str, Any] = {"type": "array", "items": {"type": "string"}, "description": _CHANGED}

_ENTRY_PROPERTIES: dict[str, Any] = {
    "id": {"type": "string", "description": "path relative to output.dir"},
    "kind": {"enum": ["image", "compare", "grid"]},
    "url": {
        "type": ["string", "null"],
        "description": "the image (a compare run: its contact sheet; a grid run: its first sheet)",
    },
    "created": {"type": "string"},
    "prompt": {"type": "string"},
    "style": NULLABLE_STR,
    "negative": NULLABLE_STR,
    "backend": {
        "type": ["string", "null"],
        "description": "a compare run: its backends, comma-separated",
    },
    "backend_type": NULLABLE_STR,
    "model": NULLABLE_STR,
    "seed": NULLABLE_INT,
    "width": NULLABLE_INT,
    "height": NULLABLE_INT,
    "steps": NULLABLE_INT,
    "latency_s": {
        "type": ["number", "null"],
        "description": "a compare run: the backends' latencies added up",
    },
    "cost_usd": NULLABLE_NUM,
    "job": {"type": ["string", "null"], "description": "the job that made it, if a worker did"},
    "tiles": {"type": "array", "items": _ref("Tile")},
    "inputs": {"type": "array", "items": _ref("Input")},
    "strength": NULLABLE_NUM,
    "page": {"type": ["string", "null"], "description": "a grid run: its grid.html"},
    "sheets": {"type": "array", "items": {"type": "string"}, "description": "a grid run"},
    "axes": {"type": "array", "items": {"type": "string"}, "description": "a grid run"},
    "cells": {"type": ["integer", "null"], "description": "a grid run: how many cells"},
}

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
            }
        },
    },
    "GenerateBody": {
        "type": "object",
        "required": ["prompt"],
        "additionalProperties": False,
        "properties": _GENERATE_PROPERTIES,
    },
    "JobBody": {
        "type": "object",
        "required": ["prompt"],
        "additionalProperties": False,
        "properties": {
            **_GENERATE_PROPERTIES,
            "max_attempts": {"type": "integer", "minimum": 1, "maximum": 100, "default": 3},
        },
    },
    "InputBody": {
        "type": "object",
        "additionalProperties": False,
        "description": "one of data (base64 or a data: URI) or id (an image of GET /v1/images)",
        "properties": {"data": {"type": "string"}, "id": {"type": "string"}},
    },
    "Input": {
        "type": "object",
        "properties": {
            "sha256": NULLABLE_STR,
            "role": NULLABLE_STR,
            "width": NULLABLE_INT,
            "height": NULLABLE_INT,
            "id": {"type": ["string", "null"], "description": "its id in output.dir, if there"},
            "url": NULLABLE_STR,
        },
    },
    "GenerateForm": {
        "type": "object",
        "required": ["prompt"],
        "additionalProperties": False,
        "properties": _FORM_PROPERTIES,
    },
    "JobForm": {
        "type": "object",
        "required": ["prompt"],
        "additionalProperties": False,
        "properties": {
            **_FORM_PROPERTIES,
            "max_attempts": {"type": "integer", "minimum": 1, "maximum": 100, "default": 3},
        },
    },
    "Generated": {
        "type": "object",
        "required": ["url", "seed", "latency_s", "cost_usd", "backend", "model"],
        "properties": {
            "id": NULLABLE_STR,
            "url": {"type": ["string", "null"], "description": "null: written outside output.dir"},
            "backend": {"type": "string"},
            "backend_type": {"type": "string"},
            "model": {"type": "string"},
            "seed": {"type": "integer"},
            "width": {"type": "integer"},
            "height": {"type": "integer"},
            "latency_s": {"type": "number"},
            "cost_usd": NULLABLE_NUM,
            "created": {"type": "string"},
            "warnings": _WARNINGS,
        },
    },
    "Job": {
        "type": "object",
        "required": ["id", "status", "backend", "prompt", "attempts", "max_attempts"],
        "properties": {
            "id": {"type": "string"},
            "status": {"enum": ["queued", "running", "done", "failed", "canceled"]},
            "backend": {"type": "string"},
            "prompt": {"type": "string"},
            "request": {"type": "object"},
            "attempts": {"type": "integer"},
            "max_attempts": {"type": "integer"},
            "created_at": {"type": "string"},
            "updated_at": {"type": "string"},
            "error": NULLABLE_STR,
            "image_id": NULLABLE_STR,
            "image_url": {"type": ["string", "null"], "description": "set once done"},
            "seed": NULLABLE_INT,
            "model": NULLABLE_STR,
            "latency_s": NULLABLE_NUM,
            "cost_usd": NULLABLE_NUM,
            "warnings": {**_WARNINGS, "description": "POST /v1/jobs only: " + _CHANGED},
        },
    },
    "Tile": {
        "type": "object",
        "properties": {
            "backend": NULLABLE_STR,
            "backend_type": NULLABLE_STR,
            "status": NULLABLE_STR,
            "model": NULLABLE_STR,
            "seed": NULLABLE_INT,
            "latency_s": NULLABLE_NUM,
            "cost_usd": NULLABLE_NUM,
            "url": NULLABLE_STR,
            "error": NULLABLE_STR,
        },
    },
    "Image": {
        "type": "object",
        "required": ["id", "kind", "url", "created", "prompt"],
        "properties": _ENTRY_PROPERTIES,
    },
    "Backend": {
        "type": "object",
        "required": ["name", "type", "default", "available"],
        "properties": {
            "name": {"type": "string"},
            "type": {"type": "string"},
            "default": {"type": "boolean"},
            "available": {"type": "boolean", "description": "false: its plugin is missing"},
            "price": {
                "oneOf": [_ref("Estimate"), {"type": "null"}],
                "description": "one default image (1024x1024); null: not set up here",
            },
            "capabilities": {
                "type": ["object", "null"],
                "properties": {
                    "text_to_image": {"type": "boolean"},
                    "images": {"type": "integer", "description": "input images it takes"},
                    "strength": {"type": "boolean"},
                    "mask": {"type": "boolean"},
                },
            },
        },
    },
    "Estimate": {
        "type": "object",
        "required": ["usd", "basis", "source"],
        "properties": {
            "usd": {"type": ["number", "null"], "description": "per image; null: unknown"},
            "basis": {"enum": ["computed", "estimated", "free", "unknown"]},
            "source": {"type": "string", "description": "where the price comes from"},
        },
    },
    "Budget": {
        "type": "object",
        "required": ["period", "limit_usd", "spent_usd", "reserved_usd", "remaining_usd", "resets"],
        "properties": {
            "period": {"enum": ["day", "week", "month"]},
            "limit_usd": {"type": "number"},
            "backend": NULLABLE_STR,
            "caller": NULLABLE_STR,
            "spent_usd": {"type": "number"},
            "reserved_usd": {"type": "number"},
            "remaining_usd": {"type": "number"},
            "resets": {"type": "string", "description": "UTC, when the period starts again"},
        },
    },
    "Info": {
        "type": "object",
        "required": ["name", "report", "info", "parameters_text", "again", "again_error"],
        "properties": {
            "id": {**NULLABLE_STR, "description": "the gallery id; null for an upload"},
            "name": {"type": "string"},
            "report": {"type": "string", "description": "what `imagen info` prints"},
            "info": {"type": "object", "description": "`imagen info --json`, without the record"},
            "parameters_text": {
                **NULLABLE_STR,
                "description": "the A1111 `parameters` text as written in the file",
            },
            "again": {
                "type": ["object", "null"],
                "description": "the request `imagen again` (POST /v1/again) runs",
            },
            "again_error": {**NULLABLE_STR, "description": "why it cannot be run again"},
        },
    },
}

_UPLOAD_FORM = {
    "multipart/form-data": {
        "schema": {
            "type": "object",
            "required": ["file"],
            "properties": {"file": {"type": "string", "format": "binary"}},
        }
    }
}

_JOB_ID = {
    "name": "job_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string"},
}

PATHS: dict[str, Any] = {
    "/v1/generate": {
        "post": {
            "summary": "Generate one image now and wait for it (small jobs; use /v1/jobs else)",
            "operationId": "generate",
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": _ref("GenerateBody")},
                    "multipart/form-data": {"schema": _ref("GenerateForm")},
                },
            },
            "responses": {
                "200": _json("the image is written", _ref("Generated")),
                "400": _error("the body is not JSON or not a readable form"),
                "403": _error("a form posted by another site's page"),
                "413": _error("the body is over 64 KiB, or --max-upload with images"),
                "415": _error("the body is not application/json or multipart/form-data"),
                "422": _error("a field or an input image is wrong; the message names it"),
                "429": _error("a budget would be passed"),
                "502": _error("the backend failed"),
                "503": _error("the backend is not set up on this server"),
            },
        }
    },
    "/v1/jobs": {
        "post": {
            "summary": "Queue a job for `imagen worker`",
            "operationId": "submitJob",
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": _ref("JobBody")},
                    "multipart/form-data": {"schema": _ref("JobForm")},
                },
            },
            "responses": {
                "202": _json("queued", _ref("Job")),
                "400": _error("the body is not JSON or not a readable form"),
                "403": _error("a form posted by another site's page"),
                "413": _error("the body is over 64 KiB, or --max-upload with images"),
                "415": _error("the body is not application/json or multipart/form-data"),
                "422": _error("a field or an input image is wrong; the message names it"),
                "429": _error("a budget would be passed"),
                "503": _error("the queue cannot be reached"),
            },
        },
        "get": {
            "summary": "Jobs, newest first",
            "operationId": "listJobs",
            "parameters": [
                {
                    "name": "status",
                    "in": "query",
                    "schema": {"enum": ["queued", "running", "done", "failed", "canceled"]},
                },
                {
                    "name": "limit",
                    "in": "query",
                    "schema": {"type": "integer", "minimum": 1, "maximum": 500, "default": 50},
                },
            ],
            "responses": {
                "200": _json(
                    "the jobs",
                    {
                        "type": "object",
                        "required": ["jobs"],
                        "properties": {"jobs": {"type": "array", "items": _ref("Job")}},
                    },
                ),
                "422": _error("a parameter is wrong"),
                "503": _error("the queue cannot be reached"),
            },
        },
    },
    "/v1/jobs/{job_id}": {
        "get": {
            "summary": "One job",
            "operationId": "getJob",
            "parameters": [_JOB_ID],
            "responses": {
                "200": _json("the job", _ref("Job")),
                "400": _error("the short id is the start of several jobs' ids"),
                "404": _error("no such job"),
                "503": _error("the queue cannot be reached"),
            },
        },
        "delete": {
            "summary": "Cancel a queued or running job",
            "operationId": "cancelJob",
            "parameters": [_JOB_ID],
            "responses": {
                "200": _json("canceled", _ref("Job")),
                "400": _error("the short id is the start of several jobs' ids"),
                "404": _error("no such job"),
                "409": _error("the job is already finished"),
                "503": _error("the queue cannot be reached"),
            },
        },
    },
    "/v1/backends": {
        "get": {
            "summary": "Backend instances and types, and style names (never config values)",
            "operationId": "listBackends",
            "responses": {
                "200": _json(
                    "what this server can generate with",
                    {
                        "type": "object",
                        "required": ["default", "backends", "types", "styles"],
                        "properties": {
                            "default": {"type": "string"},
                            "backends": {"type": "array", "items": _ref("Backend")},
                            "types": {"type": "array", "items": {"type": "string"}},
                            "styles": {"type": "array", "items": {"type": "string"}},
                        },
                    },
                )
            },
        }
    },
    "/v1/images": {
        "get": {
            "summary": "Images and compare runs in output.dir, newest first",
            "operationId": "listImages",
            "parameters": [
                {
                    "name": "cursor",
                    "in": "query",
                    "schema": {"type": "string"},
                    "description": "next_cursor of the page before",
                },
                {
                    "name": "limit",
                    "in": "query",
                    "schema": {"type": "integer", "minimum": 1, "maximum": 200, "default": 50},
                },
            ],
            "responses": {
                "200": _json(
                    "a page",
                    {
                        "type": "object",
                        "required": ["images", "next_cursor"],
                        "properties": {
                            "images": {"type": "array", "items": _ref("Image")},
                            "next_cursor": NULLABLE_STR,
                        },
                    },
                ),
                "422": _error("a parameter is wrong"),
            },
        }
    },
    "/v1/usage": {
        "get": {
            "summary": "What was generated and what it cost, by ISO week (as `imagen usage`)",
            "operationId": "usage",
            "parameters": [
                {
                    "name": "since",
                    "in": "query",
                    "schema": {"type": "string", "format": "date"},
                    "description": "UTC date, inclusive",
                },
                {
                    "name": "until",
                    "in": "query",
                    "schema": {"type": "string", "format": "date"},
                    "description": "UTC date, inclusive",
                },
                {
                    "name": "raw",
                    "in": "query",
                    "schema": {"type": "boolean", "default": False},
                    "description": "also list every row",
                },
            ],
            "responses": {
                "200": _json(
                    "usage",
                    {
                        "type": "object",
                        "required": ["source", "total", "weeks"],
                        "properties": {
                            "source": {"type": "string"},
                            "since": NULLABLE_STR,
                            "until": NULLABLE_STR,
                            "total": {"type": "object"},
                            "weeks": {"type": "array", "items": {"type": "object"}},
                            "rows": {"type": "array", "items": {"type": "object"}},
                        },
                    },
                ),
                "422": _error("a parameter is wrong"),
                "503": _error("the usage source cannot be read"),
            },
        }
    },
    "/v1/estimate": {
        "post": {
            "summary": "The price of one image of a request, before it runs",
            "operationId": "estimate",
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": _ref("GenerateBody")}},
            },
            "responses": {
                "200": _json(
                    "the estimate",
                    {
                        "allOf": [_ref("Estimate")],
                        "properties": {"backend": {"type": "string"}},
                        "required": ["backend"],
                    },
                ),
                "400": _error("the body is not JSON"),
                "415": _error("the body is not application/json"),
                "422": _error("a field is wrong; the message names it"),
                "503": _error("the backend is not set up on this server"),
            },
        }
    },
    "/v1/budgets": {
        "get": {
            "summary": "Budgets in their current period (`imagen usage --budgets`)",
            "operationId": "budgets",
            "responses": {
                "200": _json(
                    "the budgets",
                    {
                        "type": "object",
                        "required": ["budgets"],
                        "properties": {"budgets": {"type": "array", "items": _ref("Budget")}},
                    },
                ),
                "503": _error("the ledger cannot be read"),
            },
        }
    },
    "/v1/info": {
        "get": {
            "summary": "How an image of the gallery was made (`imagen info`)",
            "operationId": "imageInfo",
            "parameters": [
                {
                    "name": "id",
                    "in": "query",
                    "required": True,
                    "schema": {"type": "string"},
                    "description": "the id of an image of GET /v1/images",
                }
            ],
            "responses": {
                "200": _json("what the file says", _ref("Info")),
                "404": _error("no such image inside output.dir"),
                "422": _error("the id is missing, or the file is not an image"),
            },
        },
        "post": {
            "summary": "How an uploaded image (any tool's) was made (`imagen info`)",
            "operationId": "uploadInfo",
            "requestBody": {"required": True, "content": _UPLOAD_FORM},
            "responses": {
                "200": _json("what the file says", _ref("Info")),
                "400": _error("not a readable multipart form"),
                "403": _error("a form posted by another site's page"),
                "413": _error("the file is over --max-upload"),
                "415": _error("the body is not multipart/form-data"),
                "422": _error("no file, or not a PNG, JPEG or WebP image"),
            },
        },
    },
    "/v1/again": {
        "post": {
            "summary": "Queue the recorded request of an image again (`imagen again`)",
            "operationId": "again",
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["id"],
                            "properties": {"id": {"type": "string"}},
                        }
                    },
                    **_UPLOAD_FORM,
                },
            },
            "responses": {
                "202": _json("queued", _ref("Job")),
                "400": _error("the body is not JSON or not a readable form"),
                "403": _error("a form posted by another site's page"),
                "404": _error("no such image inside output.dir"),
                "413": _error("the file is over --max-upload"),
                "415": _error("the body is not JSON or multipart/form-data"),
                "422": _error("the file records nothing to run, or its backend is not here"),
                "429": _error("a budget would be passed"),
                "503": _error("the queue cannot be reached"),
            },
        }
    },
    "/v1/openapi.json": {
        "get": {
            "summary": "This document",
            "operationId": "openapi",
            "responses": {"200": _json("OpenAPI 3.1", {"type": "object"})},
        }
    },
    "/images/{path}": {
        "get": {
            "summary": "An image file inside output.dir (the url of an entry)",
            "operationId": "image",
            "parameters": [
                {"name": "path", "in": "path", "required": True, "schema": {"type": "string"}}
            ],
            "responses": {
                "200": {
                    "description": "the image",
                    "content": {
                        "image/png": {},
                        "image/jpeg": {},
                        "image/webp": {},
                    },
                },
                "404": _error("no such image inside output.dir"),
            },
        }
    },
}


def document() -> dict[str, Any]:
    """The OpenAPI document (a fresh copy: callers may change it)."""
    from imagen_web import openapi_openai

    return copy.deepcopy(
        {
            "openapi": "3.1.0",
            "info": {
                "title": "imagen",
                "version": __version__,
                "description": (
                    "Generate images through imagen's backends, queue jobs for its workers, "
                    'browse output.dir. Errors are {"error": {"code", "message"}}. With a '
                    "token, send `Authorization: Bearer <token>` on every call. "
                    "/v1/images/* and /v1/models speak OpenAI's Images API (base_url "
                    "http://HOST:PORT/v1), with its error shape."
                ),
            },
            "paths": {**PATHS, **openapi_openai.PATHS},
            "components": {
                "schemas": {**SCHEMAS, **openapi_openai.SCHEMAS},
                "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            },
            "security": [{}, {"bearer": []}],
        }
    )
