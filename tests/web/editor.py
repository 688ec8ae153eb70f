"""A test backend that takes input images: ``editor`` paints the request's size
in one colour and records in its metadata what it was given (each input's
role and sha256, the strength), so tests can check what reached the backend;
``texter`` takes text only. ``python -c RUN_CLI serve ...`` runs the real CLI
with them registered."""

from __future__ import annotations

import io
import random

from PIL import Image

from imagen_core import Request, Result, hookimpl
from imagen_core.models import Capabilities

RUN_CLI = (
    "import tests.web.editor as editor; from imagen_core.plugins import get_plugin_manager; "
    "get_plugin_manager().register(editor, name='editor'); "
    "from imagen_core.cli import main; main()"
)


class Editor:
    def __init__(self, config: object) -> None:
        pass

    def capabilities(self) -> Capabilities:
        return Capabilities(images=16, strength=True, mask=True)

    def generate(self, request: Request, progress: object) -> Result:
        seed = request.seed or random.randrange(1, 2**31)  # 0: pick one, as backends do
        buffer = io.BytesIO()
        shade = seed % 256
        Image.new("RGB", (request.width, request.height), (shade, 40, 90)).save(buffer, "PNG")
        return Result(
            image=buffer.getvalue(),
            seed=seed,
            model="editor-1",
            cost_usd=0.002,
            metadata={
                "inputs": [[item.role, item.sha256] for item in request.inputs],
                "strength": request.strength,
            },
        )


class Texter(Editor):
    def capabilities(self) -> Capabilities:
        return Capabilities()


@hookimpl
def register_backends(register):
    register("editor", Editor)
    register("texter", Texter)
