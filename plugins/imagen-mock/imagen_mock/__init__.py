"""imagen's mock backend: a deterministic procedural picture, no GPU or network.

Registering is cheap: Pillow is imported only when an image is made.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from imagen_core import hookimpl

if TYPE_CHECKING:
    from imagen_core.registry import RegisterBackend


@hookimpl
def register_backends(register: RegisterBackend) -> None:
    from imagen_mock.backend import MockBackend, MockConfig

    register(
        "mock",
        MockBackend,
        config=MockConfig,
        examples={"mock": {}, "mock-slow": {"latency_s": 3.0}},
    )
