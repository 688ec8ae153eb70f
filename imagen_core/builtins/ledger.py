"""The cost ledger sink (imagen_core.ledger), on by default.

Registered lazily: this module is imported at every start, the ledger only when
a command needs sinks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from imagen_core.hookspecs import hookimpl

if TYPE_CHECKING:
    from imagen_core.registry import RegisterSink


@hookimpl
def register_sinks(register: RegisterSink) -> None:
    from imagen_core.ledger import Ledger, LedgerConfig

    register("ledger", Ledger, config=LedgerConfig, default=True)
