"""One prediction's life: create in sync mode, poll until it is final, cancel.

Replicate's statuses are starting, processing, succeeded, failed, canceled and
(since prediction deadlines) aborted; the status is read as an open string, so
one this code does not know yet is waited on like ``processing``.

Which failures ``imagen worker`` may run again: Replicate bills a prediction
once it runs (the time it ran, or its outputs), also when it then fails or is
canceled ("canceled (charged)" in Replicate's deadline changelog), and bills
nothing for one that never started (``aborted``: "not charged"). So a failure is
transient only while the prediction never ran: stopped by its deadline before
it started, failed before it started with an error that may pass (E6716, a
timeout starting it), or canceled by imagen (its timeout, polls that failed
until then) while still ``starting``.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from imagen_core import BackendError
from imagen_replicate.outputs import log_progress, output_urls

if TYPE_CHECKING:
    from imagen_core import Progress
    from imagen_replicate.client import ReplicateClient
    from imagen_replicate.config import ModelRef
    from imagen_replicate.pacing import Pacing

TERMINAL = frozenset({"succeeded", "failed", "canceled", "aborted"})
# Replicate's error codes (replicate.com/docs/reference/error-codes) of failures
# that may pass on another run: E1000 "unknown error ... temporary system issues"
# and E6716 "timeout starting prediction ... high system load". Also its older
# "Prediction interrupted; please retry (code: PA)".
_MAY_PASS = re.compile(r"\bE(?:1000|6716)\b|please retry", re.IGNORECASE)


class PredictionRun:
    """Tracks the latest state of one prediction as the client sees it."""

    def __init__(
        self,
        client: ReplicateClient,
        *,
        pacing: Pacing,
        deadline: float,
        timeout_s: float,
        progress: Progress,
    ) -> None:
        self.client = client
        self.pacing = pacing
        self.deadline = deadline
        self.timeout_s = timeout_s
        self.progress = progress
        self._prediction: dict[str, Any] = {}
        self.ran = False  # whether it was ever seen running: Replicate bills that

    @property
    def prediction(self) -> dict[str, Any]:
        return self._prediction

    @prediction.setter
    def prediction(self, value: dict[str, Any]) -> None:
        self._prediction = value
        if value.get("started_at") or value.get("status") in ("processing", "succeeded"):
            self.ran = True

    @property
    def never_ran(self) -> bool:
        """Final without ever running: nothing was billed, so running the job again
        cannot pay twice."""
        return self.finished and not self.ran and self.status != "succeeded"

    @property
    def id(self) -> str:
        return str(self.prediction.get("id", ""))

    @property
    def status(self) -> str:
        return str(self.prediction.get("status", ""))

    @property
    def started(self) -> bool:
        return bool(self.prediction)

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL

    @property
    def web_url(self) -> str:
        urls = self.prediction.get("urls")
        web = urls.get("web") if isinstance(urls, dict) else None
        return web if isinstance(web, str) else f"https://replicate.com/p/{self.id}"

    @property
    def predict_time_s(self) -> float | None:
        metrics = self.prediction.get("metrics")
        value = metrics.get("predict_time") if isinstance(metrics, dict) else None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        return None

    def start(
        self, model: ModelRef, model_input: dict[str, Any], *, wait_s: int, cancel_after: str
    ) -> None:
        self.progress(0, 0, "creating the prediction")
        self.prediction = self.client.create(
            model, model_input, wait_s=wait_s, cancel_after=cancel_after
        )
        self._report()

    def wait_for_output(self) -> None:
        """Return when the prediction is final, or when the sync-mode answer already
        holds the output: for file outputs Replicate answers with all files as soon
        as they exist, while the status may still be ``processing``."""
        if self.finished or output_urls(self.prediction.get("output")):
            return
        delays = self.pacing.poll_delays()
        failing: BackendError | None = None
        while not self.finished:
            remaining = self.deadline - self.pacing.clock()
            if remaining <= 0:
                if failing is not None:  # the polls failed until the deadline
                    raise failing
                raise BackendError(
                    f"Replicate prediction {self.id} did not finish within "
                    f"timeout_s={self.timeout_s:g}s (status {self.status}); imagen asked "
                    "Replicate to cancel it. Raise timeout_s in the backend's block if the "
                    "model needs longer (a cold start can take minutes)",
                    # Transient if it never ran (the backend decides once canceled).
                    transient=True,
                )
            self.pacing.sleep(min(next(delays), remaining))
            try:
                self.prediction = self.client.get(self.id)
            except BackendError as exc:
                # The prediction exists and runs on: a poll failing past its own
                # retries (5xx, 429, the network) is no reason to give it up.
                if not exc.transient:
                    raise
                failing = exc
                continue
            failing = None
            self._report()

    def settle(self) -> None:
        """With the image in hand, wait briefly for the final status and for
        ``metrics.predict_time``, which only a final prediction carries and which
        may appear a moment later still. Best effort: the image is never lost to it."""
        until = min(self.deadline, self.pacing.clock() + self.pacing.settle_s)
        delays = self.pacing.poll_delays()
        try:
            while not self.finished:
                remaining = until - self.pacing.clock()
                if remaining <= 0:
                    return
                self.pacing.sleep(min(next(delays), remaining))
                self.prediction = self.client.get(self.id)
            if self.predict_time_s is None:
                self.prediction = self.client.get(self.id)
        except BackendError:
            return

    def cancel(self) -> str | None:
        """Ask Replicate to cancel the prediction; the reason when that failed."""
        try:
            self.prediction = self.client.cancel(self.id)
        except BackendError as exc:
            return str(exc)
        return None

    def failure(self) -> BackendError | None:
        """The error for a final prediction that made no image, with its id."""
        error = self.prediction.get("error")
        because = f": {error}" if error else ""
        if self.status == "failed":
            text = (
                f"Replicate prediction {self.id} failed{because or ' without an error text'} "
                f"(logs: {self.web_url})"
            )
            if not _MAY_PASS.search(str(error or "")):
                return BackendError(text)
            if self.ran:
                # It ran, and Replicate bills that: running it again could pay twice.
                return BackendError(
                    f"{text}; Replicate says it may pass: run the generation again (it ran, "
                    "so it may be billed, and imagen worker does not run it twice)"
                )
            return BackendError(f"{text}; it never started (not charged)", transient=True)
        if self.status == "canceled":
            return BackendError(
                f"Replicate prediction {self.id} was canceled{because} (from the web page or "
                f"the API, or at its Cancel-After deadline): {self.web_url}"
            )
        if self.status == "aborted":
            return BackendError(
                f"Replicate prediction {self.id} was aborted before it started{because}: its "
                "Cancel-After deadline passed while it waited for a machine (not charged); "
                "try again, or raise timeout_s",
                transient=True,  # never ran: a later run may find a machine sooner
            )
        return None

    def _report(self) -> None:
        steps = log_progress(self.prediction.get("logs"))
        if steps is not None:
            self.progress(steps[0], steps[1], self.status)
        else:
            self.progress(0, 0, self.status)
