"""imagen-replicate: a backend type ``replicate`` for Replicate's cloud API.

Registering is cheap: requests is imported only when a prediction is made, and
the token is read only then (a missing token matters only to the backend using it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from imagen_core import hookimpl

if TYPE_CHECKING:
    from imagen_core.registry import RegisterBackend
    from imagen_replicate.backend import ReplicateBackend
    from imagen_replicate.config import ReplicateConfig


def _backend(config: ReplicateConfig) -> ReplicateBackend:
    # The backend module pulls in the client, retry pacing and the data files
    # (~13 ms): only when a replicate instance is used, not for every command.
    from imagen_replicate.backend import ReplicateBackend

    return ReplicateBackend(config)


def _config() -> type[ReplicateConfig]:
    from imagen_replicate.config import ReplicateConfig

    return ReplicateConfig


@hookimpl
def register_backends(register: RegisterBackend) -> None:
    register(
        "replicate",
        _backend,
        config=_config,  # imported when a replicate instance is used
        examples={
            "flux-schnell-replicate": {
                "model": "black-forest-labs/flux-schnell",
                "input": {"output_format": "png"},
            },
            "flux-dev-replicate": {
                "model": "black-forest-labs/flux-dev",
                # go_fast (the default) makes the same seed give different images.
                "input": {"output_format": "png", "go_fast": False},
            },
        },
    )
