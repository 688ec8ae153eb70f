"""imagen's mock backend: a deterministic procedural picture, no GPU or network.

Registering is cheap: Pillow is imported only when an image is made.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from imagen_core import hookimpl

if TYPE_CHECKING:
    from imagen_core.registry import RegisterBackend
    from imagen_mock.backend import MockBackend, MockConfig


def _backend(config: MockConfig) -> MockBackend:
    from imagen_mock.backend import MockBackend

    return MockBackend(config)


def _config() -> type[MockConfig]:
    from imagen_mock.backend import MockConfig

    return MockConfig


@hookimpl
def register_backends(register: RegisterBackend) -> None:
    register(
        "mock",
        _backend,
        config=_config,  # imported when a mock instance is used, not by `imagen jobs`
        examples={"mock": {}, "mock-slow": {"latency_s": 3.0}},
    )
