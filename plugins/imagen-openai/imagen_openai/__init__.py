"""imagen-openai: a backend type ``openai`` for OpenAI's Images API
(``/v1/images/generations`` and ``/v1/images/edits``) and the servers that speak it.

Registering is cheap: requests and the model table are loaded only when an
``openai`` instance is used, and the key is read only then.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from imagen_core import hookimpl

if TYPE_CHECKING:
    from imagen_core.registry import RegisterBackend
    from imagen_openai.backend import OpenAIBackend
    from imagen_openai.config import OpenAIConfig


def _backend(config: OpenAIConfig) -> OpenAIBackend:
    from imagen_openai.backend import OpenAIBackend

    return OpenAIBackend(config)


def _config() -> type[OpenAIConfig]:
    from imagen_openai.config import OpenAIConfig

    return OpenAIConfig


@hookimpl
def register_backends(register: RegisterBackend) -> None:
    register(
        "openai",
        _backend,
        config=_config,  # imported when an openai instance is used
        examples={
            "gpt-image": {"model": "gpt-image-1", "quality": "medium"},
            "dall-e-3": {"model": "dall-e-3", "quality": "standard"},
            # Another OpenAI-compatible server: here a second imagen (`imagen serve`)
            # on a GPU box, which takes seed, steps and a negative prompt as well.
            "imagen-on-gpu-box": {
                "model": "flux-schnell-local",
                "base_url": "http://gpu-box.local:8000/v1",
                "api_key_env": None,
                "request_fields": {
                    "seed": "seed",
                    "steps": "steps",
                    "negative": "negative_prompt",
                    "strength": "strength",
                },
            },
        },
    )
