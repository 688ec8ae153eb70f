"""imagen-comfyui: a backend type ``comfyui`` that runs workflow templates on a
ComfyUI server. One adapter for every model: a model is a workflow JSON plus a
block in imagen.yaml, never Python.

Registering is cheap: requests and websocket-client are imported only when a
prompt is sent, and the command group only when it runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from imagen_core import hookimpl

if TYPE_CHECKING:
    import click

    from imagen_comfyui.backend import ComfyUIBackend
    from imagen_comfyui.config import ComfyUIConfig
    from imagen_core.registry import RegisterBackend

# The instances `imagen config init` suggests, one per bundled workflow.
EXAMPLES = {
    "flux-schnell-local": "flux1-schnell",
    "flux2-klein-local": "flux2-klein",
    "sd35-medium-local": "sd35-medium",
    "flux2-klein-edit-local": "flux2-klein-edit",
    "flux2-klein-edit-ref-local": "flux2-klein-edit-ref",
    "sd35-medium-img2img-local": "sd35-medium-img2img",
    "flux1-fill-inpaint-local": "flux1-fill-inpaint",
}


def _backend(config: ComfyUIConfig) -> ComfyUIBackend:
    # The backend module (templates, protocol) loads only when an instance is built.
    from imagen_comfyui.backend import ComfyUIBackend

    return ComfyUIBackend(config)


def _config() -> type[ComfyUIConfig]:
    from imagen_comfyui.config import ComfyUIConfig

    return ComfyUIConfig


@hookimpl
def register_backends(register: RegisterBackend) -> None:
    register(
        "comfyui",
        _backend,
        config=_config,  # imported when a comfyui instance is used
        # `defaults: {}` is spelled out: the sample prints example values as
        # they are, and an empty mapping is what the nested block looks like.
        examples={
            name: {"workflow": workflow, "defaults": {}} for name, workflow in EXAMPLES.items()
        },
    )


@hookimpl
def register_commands(cli: click.Group) -> None:
    from imagen_comfyui.commands import comfyui

    cli.add_command(comfyui)
