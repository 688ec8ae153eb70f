"""The LISTEN side of the queue: a dedicated autocommit connection that only hears.

Why no job is missed between "nothing to claim" and "start waiting":
``prime()`` runs at the start of every claim. It makes sure we are listening and
drops the notifications that already arrived; a job whose notification arrived
before the claim was committed before the claim's snapshot, so the claim sees
it. Everything committed later is announced to a connection that is already
listening, and waits in its socket until ``wait()`` reads it. A notification
may be stale (its job already taken): ``wait()`` may return early, which the
contract allows; it never sleeps through a job.

When the connection was lost, notifications may have been lost with it, so the
first ``wait()`` after listening again returns at once and the caller looks.
"""

from __future__ import annotations

import os
import threading
import time
from typing import TYPE_CHECKING

import psycopg
from psycopg import sql

from imagen_core.errors import ImagenError

if TYPE_CHECKING:
    from collections.abc import Callable

    from imagen_postgres.connection import Connection

# A connection that heard nothing for this long is asked "SELECT 1" at the end of
# a wait, so that a silently dropped one is noticed (and replaced) by the next.
HEALTH_CHECK_S = 60.0


class Listener:
    def __init__(self, connect: Callable[[], Connection], channel: str) -> None:
        self._connect = connect
        self._listen = sql.SQL("LISTEN {}").format(sql.Identifier(channel))
        self._conn: Connection | None = None
        self._pid = os.getpid()
        self._lost = False  # the connection died since the caller last claimed
        self._checked = time.monotonic()
        # One user of the connection at a time. Claims never wait for it: when
        # another thread holds it, that thread is listening, which is all we need.
        self._lock = threading.Lock()

    def prime(self) -> None:
        """Listen (if not yet) and forget what was already heard: the claim that
        follows covers it. Never raises and never blocks."""
        if not self._lock.acquire(blocking=False):
            return
        try:
            self._start()
            self._lost = False
            assert self._conn is not None
            # libpq directly: read what the socket holds without blocking and pop
            # it. A claim pays this on every call, and notifies(timeout=0) costs
            # several times more (a generator, a lock, a wait with a deadline).
            pgconn = self._conn.pgconn
            pgconn.consume_input()
            while pgconn.notifies() is not None:
                pass
        except (psycopg.Error, ImagenError):
            self._drop()
        finally:
            self._lock.release()

    def wait(self, timeout_s: float) -> None:
        """Return on a notification, else after ``timeout_s``. Connection problems
        are not raised: the wait then simply lasts its time (the caller's next
        queue call reports them), so a worker never spins on a dead database."""
        deadline = time.monotonic() + max(0.0, timeout_s)
        if not self._lock.acquire(timeout=max(0.0, timeout_s)):
            return  # another thread was listening for the whole time
        try:
            try:
                restarted = self._start()
            except (psycopg.Error, ImagenError):
                self._drop()
                time.sleep(max(0.0, deadline - time.monotonic()))
                return
            if restarted and self._lost:
                self._lost = False
                return  # notifications may have been lost with the old connection
            assert self._conn is not None
            try:
                remaining = max(0.0, deadline - time.monotonic())
                for _ in self._conn.notifies(timeout=remaining, stop_after=1):
                    self._checked = time.monotonic()
                    return
                if time.monotonic() - self._checked > HEALTH_CHECK_S:
                    self._conn.execute("SELECT 1")
                    self._checked = time.monotonic()
            except psycopg.Error:
                self._drop()
        finally:
            self._lock.release()

    def _start(self) -> bool:
        """Open and LISTEN when needed; True when it just did."""
        if self._pid != os.getpid():
            # A forked child must not use (or close) its parent's socket.
            self._forget()
        conn = self._conn
        if conn is not None and not conn.closed:  # a broken one is closed too
            return False
        if conn is not None:
            self._drop()
        conn = self._connect()
        try:
            conn.execute(self._listen)
        except psycopg.Error:
            conn.close()
            raise
        self._conn = conn
        self._checked = time.monotonic()
        return True

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            self._lost = True
            conn.close()

    def _forget(self) -> None:
        # Dropped, not closed: close() would send the server a Terminate on the
        # socket the parent still uses (psycopg's finalizer knows not to).
        self._conn = None
        self._pid = os.getpid()

    def close(self) -> None:
        with self._lock:
            if self._pid != os.getpid():
                self._forget()
            conn, self._conn = self._conn, None
            if conn is not None:
                conn.close()
