"""Stopping a backend call that runs in another thread, the way Ctrl-C stops one.

A backend already knows what to do when ``imagen generate`` is interrupted: it
sees ``KeyboardInterrupt`` inside ``generate()`` and cancels its remote work
(ComfyUI deletes or interrupts its prompt, Replicate cancels its prediction)
before re-raising. The worker runs jobs in threads, where no signal arrives, so
it raises the same exception there itself: ``Canceled`` is a KeyboardInterrupt,
delivered with CPython's ``PyThreadState_SetAsyncExc``. Every backend that is
correct under Ctrl-C is correct under a canceled job, with no new method to
implement.

The exception arrives between two Python bytecodes: a thread blocked in one C
call (a socket read, a ``time.sleep``) sees it when that call returns. Backends
wait in short slices anyway (they must notice their own timeouts), so in
practice that is well under a second to a few seconds.

Only the backend call is cancelable (``Session.generate`` enters the scope
around it); writing the image and running the sinks never see the exception.
"""

from __future__ import annotations

import contextlib
import ctypes
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator


class Canceled(KeyboardInterrupt):
    """Raised inside a backend call whose job was canceled, lost its lease, or
    whose worker is shutting down."""


def _raise_in(thread_id: int, exc: type[BaseException] | None) -> None:
    """Schedule ``exc`` in the thread (None: unschedule a pending one)."""
    ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(thread_id), ctypes.py_object(exc) if exc is not None else None
    )


class CancelScope:
    """One job's backend call, cancelable from another thread.

    Cancellation is delivered at most once; a scope canceled before the call
    starts makes the call raise ``Canceled`` at once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._thread: int | None = None
        self._delivered = False
        self.canceled = False

    @contextlib.contextmanager
    def cancelable(self) -> Iterator[None]:
        with self._lock:
            if self.canceled:
                raise Canceled
            self._thread = threading.get_ident()
        try:
            yield
        finally:
            with self._lock:
                thread, self._thread = self._thread, None
                if self._delivered and thread is not None:
                    # Scheduled but maybe not raised yet: it must not escape
                    # into the image writing or the sinks that come next.
                    _raise_in(thread, None)

    def cancel(self) -> bool:
        """Stop the call; True when it was running and has been told to stop."""
        # A bounded wait: the caller is a heartbeat or a signal handler, which
        # must not hang on a job thread.
        if not self._lock.acquire(timeout=1.0):
            return False
        try:
            self.canceled = True
            if self._thread is None or self._delivered:
                return False
            self._delivered = True
            _raise_in(self._thread, Canceled)
            return True
        finally:
            self._lock.release()
