"""How long to wait between retries and for an answer, and the clock it is
measured on: imagen_core.remote's Pacing, plus waiting for an answer in slices.

Tests replace the functions together and run the retry and timeout logic
without waiting.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import attrs

from imagen_core.remote import Pacing as RemotePacing


def _wait(event: threading.Event, seconds: float) -> bool:
    return event.wait(seconds)


@attrs.frozen
class Pacing(RemotePacing):
    # Waiting for an answer: in slices, so that Ctrl-C, a canceled worker job
    # (an exception raised in this thread between two bytecodes) and the
    # timeout are noticed within one slice, never after a long blocking read.
    wait: Callable[[threading.Event, float], bool] = _wait
    wait_slice_s: float = 0.25
