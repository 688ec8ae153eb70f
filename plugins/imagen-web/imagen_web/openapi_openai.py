"""The OpenAI-compatible routes in the OpenAPI document (``openai_api``):
their paths and schemas, merged into ``openapi.document()``."""

from __future__ import annotations

from typing import Any

from imagen_core.models import MAX_PROMPT_CHARS
from imagen_web.openai_api import IGNORED, MAX_N, MAX_USER_CHARS
from imagen_web.openapi import MAX_SEED, _ref
from imagen_web.uploads import MAX_IMAGES


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": _ref("OpenAIError")}},
    }


_PARAMS: dict[str, Any] = {
    "prompt": {"type": "string", "minLength": 1, "maxLength": MAX_PROMPT_CHARS},
    "model": {
        "type": ["string", "null"],
        "description": "a backend instance of GET /v1/models; absent: the default backend",
    },
    "n": {"type": "integer", "minimum": 1, "maximum": MAX_N, "default": 1},
    "size": {
        "type": "string",
        "pattern": r"^(auto|[0-9]{1,5}x[0-9]{1,5})$",
        "default": "auto",
        "description": "WIDTHxHEIGHT (1-8192 a side) or auto (1024x1024)",
    },
    "response_format": {"enum": ["b64_json", "url"], "default": "b64_json"},
    "output_format": {
        "enum": ["png", "jpeg", "webp"],
        "description": "b64_json answers are converted to it; url answers are the file as made",
    },
    "output_compression": {"type": "integer", "minimum": 0, "maximum": 100},
    "style": {
        "type": "string",
        "description": "an imagen style (GET /v1/backends); vivid and natural are ignored",
    },
    "user": {
        "type": "string",
        "maxLength": MAX_USER_CHARS,
        "description": "recorded as the caller in the ledger",
    },
    "stream": {"type": "boolean", "description": "only false: streaming is not supported"},
    "partial_images": {"type": "integer", "minimum": 0, "maximum": 3, "description": "ignored"},
    **{name: {"enum": list(values), "description": "ignored"} for name, values in IGNORED.items()},
    "seed": {
        "type": "integer",
        "minimum": 0,
        "maximum": MAX_SEED,
        "description": "imagen extension (extra_body): the first image's seed, the next +1; "
        "0 picks one",
    },
    "steps": {"type": "integer", "minimum": 0, "maximum": 10000, "description": "extension"},
    "negative_prompt": {
        "type": "string",
        "maxLength": MAX_PROMPT_CHARS,
        "description": "extension",
    },
}
_GENERATION_PARAMS = {k: v for k, v in _PARAMS.items() if k != "input_fidelity"}
_BINARY = {"type": "string", "format": "binary"}

SCHEMAS: dict[str, Any] = {
    "OpenAIError": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["message", "type", "param", "code"],
                "properties": {
                    "message": {"type": "string"},
                    "type": {"type": "string"},
                    "param": {"type": ["string", "null"]},
                    "code": {"type": ["string", "null"]},
                },
            }
        },
    },
    "ImagesGenerationBody": {
        "type": "object",
        "required": ["prompt"],
        "additionalProperties": False,
        "properties": _GENERATION_PARAMS,
    },
    "ImagesEditBody": {
        "type": "object",
        "required": ["prompt", "image"],
        "additionalProperties": False,
        "properties": {
            **_PARAMS,
            "image": {
                "description": f"the image to edit; up to {MAX_IMAGES} as image[] (the "
                "first is edited, the others are references)",
                **_BINARY,
            },
            "image[]": {"type": "array", "items": _BINARY, "maxItems": MAX_IMAGES},
            "mask": {"description": "the first image's size", **_BINARY},
            "strength": {
                "type": "number",
                "minimum": 0,
                "maximum": 1,
                "description": "extension: how far from the image to go",
            },
        },
    },
    "ImagesResponse": {
        "type": "object",
        "required": ["created", "data"],
        "properties": {
            "created": {"type": "integer"},
            "size": {"type": "string"},
            "output_format": {"type": "string"},
            "data": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["imagen"],
                    "properties": {
                        "b64_json": {"type": "string"},
                        "url": {"type": "string", "description": "GET it with the token"},
                        "revised_prompt": {
                            "type": "string",
                            "description": "the prompt sent, when a style changed it",
                        },
                        "imagen": {
                            "type": "object",
                            "description": "imagen's extension: the image in the gallery",
                            "required": ["id", "url", "seed", "cost_usd", "backend", "model"],
                            "properties": {
                                "id": {"type": "string"},
                                "url": {"type": "string"},
                                "seed": {"type": "integer"},
                                "cost_usd": {"type": ["number", "null"]},
                                "backend": {"type": "string"},
                                "model": {"type": "string"},
                                "latency_s": {"type": "number"},
                            },
                        },
                    },
                },
            },
        },
    },
    "Model": {
        "type": "object",
        "required": ["id", "object", "created", "owned_by"],
        "properties": {
            "id": {"type": "string", "description": "a backend instance"},
            "object": {"const": "model"},
            "created": {"type": "integer"},
            "owned_by": {"type": "string", "description": "imagen:<backend type>"},
        },
    },
}

_RUN_ERRORS = {
    "404": _error("no backend of that name (model_not_found)"),
    "413": _error("the body is too large"),
    "415": _error("wrong content type"),
    "429": _error("a budget would be passed (budget_exceeded)"),
    "499": _error("the client closed the connection"),
    "500": _error("the image could not be written"),
    "502": _error("the backend failed"),
    "503": _error("the backend is not set up on this server"),
}

PATHS: dict[str, Any] = {
    "/v1/images/generations": {
        "post": {
            "summary": "OpenAI-compatible: generate n images now (the openai SDK's "
            "images.generate)",
            "operationId": "openaiImagesGenerate",
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": _ref("ImagesGenerationBody")}},
            },
            "responses": {
                "200": {
                    "description": "the images",
                    "content": {"application/json": {"schema": _ref("ImagesResponse")}},
                },
                "400": _error("a parameter is wrong; param names it"),
                **_RUN_ERRORS,
            },
        }
    },
    "/v1/images/edits": {
        "post": {
            "summary": "OpenAI-compatible: edit images (the openai SDK's images.edit)",
            "operationId": "openaiImagesEdit",
            "requestBody": {
                "required": True,
                "content": {"multipart/form-data": {"schema": _ref("ImagesEditBody")}},
            },
            "responses": {
                "200": {
                    "description": "the images",
                    "content": {"application/json": {"schema": _ref("ImagesResponse")}},
                },
                "400": _error("a parameter or an image is wrong; param names it"),
                "403": _error("a form posted by another site's page"),
                **_RUN_ERRORS,
            },
        }
    },
    "/v1/models": {
        "get": {
            "summary": "OpenAI-compatible: the backends, as models",
            "operationId": "openaiModels",
            "responses": {
                "200": {
                    "description": "the list",
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["object", "data"],
                                "properties": {
                                    "object": {"const": "list"},
                                    "data": {"type": "array", "items": _ref("Model")},
                                },
                            }
                        }
                    },
                }
            },
        }
    },
    "/v1/models/{model}": {
        "get": {
            "summary": "OpenAI-compatible: one backend, as a model",
            "operationId": "openaiModel",
            "parameters": [
                {"name": "model", "in": "path", "required": True, "schema": {"type": "string"}}
            ],
            "responses": {
                "200": {
                    "description": "the model",
                    "content": {"application/json": {"schema": _ref("Model")}},
                },
                "404": _error("no such backend"),
            },
        }
    },
}
