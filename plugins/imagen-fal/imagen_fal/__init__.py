"""imagen-fal: a backend type ``fal`` for fal.ai's queue API.

Registering is cheap: requests is imported only when a request is made, and the
key is read only then (a missing key matters only to the backend using it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from imagen_core import hookimpl

if TYPE_CHECKING:
    from imagen_core.registry import RegisterBackend
    from imagen_fal.backend import FalBackend
    from imagen_fal.config import FalConfig


def _backend(config: FalConfig) -> FalBackend:
    # The backend module pulls in the client and the data files: only when a fal
    # instance is used, not for every command.
    from imagen_fal.backend import FalBackend

    return FalBackend(config)


def _config() -> type[FalConfig]:
    from imagen_fal.config import FalConfig

    return FalConfig


@hookimpl
def register_backends(register: RegisterBackend) -> None:
    register(
        "fal",
        _backend,
        config=_config,  # imported when a fal instance is used
        examples={
            "flux-schnell-fal": {
                "model": "fal-ai/flux/schnell",
                "extra": {"output_format": "png"},
            },
            # Edits the image given with --image; without one it runs Kontext's
            # text-to-image endpoint.
            "kontext-fal": {"model": "fal-ai/flux-pro/kontext"},
        },
    )
