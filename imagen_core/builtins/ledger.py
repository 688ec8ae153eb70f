"""The cost ledger sink (imagen_core.ledger), on by default.

Registered lazily: this module is imported at every start, the ledger only when
a command needs sinks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from imagen_core.hookspecs import hookimpl

if TYPE_CHECKING:
    from imagen_core.ledger import Ledger, LedgerConfig
    from imagen_core.registry import RegisterSink


def _ledger(config: LedgerConfig) -> Ledger:
    from imagen_core.ledger import Ledger

    return Ledger(config)


def _config() -> type[LedgerConfig]:
    from imagen_core.ledger import LedgerConfig

    return LedgerConfig


@hookimpl
def register_sinks(register: RegisterSink) -> None:
    # Both imported when a command uses sinks: `imagen jobs` never does.
    register("ledger", _ledger, config=_config, default=True)
