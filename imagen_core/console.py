"""The ``imagen`` console script (``[project.scripts]``): the little a start does
before anything else is imported, then ``imagen_core.cli.main``.

The cycle collector is told to wait: starting builds some 30,000 objects
(modules, classes, functions of click, attrs, pluggy, Pillow and imagen) that
all stay alive, and with the usual threshold (a collection every 700
allocations) the collector runs about forty times during a start only to find
them alive: ≈ 7 ms of a mock generation's CPU, a sixth of what imagen adds to
a plain script that renders the same picture. So the first collection comes
after START_COLLECTION_AFTER allocations, and from then on the usual ones: the
thresholds are restored as that first collection starts (any collection,
``gc.collect()`` too). A command that runs on (a worker, a server) thus gets
its first collection a little later, then the same collections as before.

Only the console script does this: importing imagen_core.cli, or calling
``main(argv)`` from a test or a script, leaves the collector as it is.
"""

from __future__ import annotations

import gc

# Allocations (less deallocations) before the console script's first collection.
START_COLLECTION_AFTER = 100_000


def main() -> None:
    defer_collection()
    from imagen_core.cli import main as run

    run()


def defer_collection() -> None:
    """Let the cycle collector first run after START_COLLECTION_AFTER
    allocations, then as usual. Nothing changes when the collector is off or
    was tuned to collect less often than that."""
    usual = gc.get_threshold()
    if not gc.isenabled() or usual[0] == 0 or usual[0] >= START_COLLECTION_AFTER:
        return
    restored = False

    def restore(phase: str, _info: dict[str, int]) -> None:
        nonlocal restored
        if phase == "start" and not restored:
            restored = True  # left in gc.callbacks: removing it while called would skip another
            gc.set_threshold(*usual)

    gc.callbacks.append(restore)
    gc.set_threshold(START_COLLECTION_AFTER, *usual[1:])
