"""One prediction's life: create in sync mode, poll until it is final, cancel.

Replicate's statuses are starting, processing, succeeded, failed, canceled and
(since prediction deadlines) aborted; the status is read as an open string, so
one this code does not know yet is waited on like ``processing``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from imagen_core import BackendError
from imagen_replicate.outputs import log_progress, output_urls

if TYPE_CHECKING:
    from imagen_core import Progress
    from imagen_replicate.client import ReplicateClient
    from imagen_replicate.config import ModelRef
    from imagen_replicate.pacing import Pacing

TERMINAL = frozenset({"succeeded", "failed", "canceled", "aborted"})


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
        self.prediction: dict[str, Any] = {}

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
        while not self.finished:
            remaining = self.deadline - self.pacing.clock()
            if remaining <= 0:
                raise BackendError(
                    f"Replicate prediction {self.id} did not finish within "
                    f"timeout_s={self.timeout_s:g}s (status {self.status}); imagen asked "
                    "Replicate to cancel it. Raise timeout_s in the backend's block if the "
                    "model needs longer (a cold start can take minutes)"
                )
            self.pacing.sleep(min(next(delays), remaining))
            self.prediction = self.client.get(self.id)
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
            return BackendError(
                f"Replicate prediction {self.id} failed{because or ' without an error text'} "
                f"(logs: {self.web_url})"
            )
        if self.status == "canceled":
            return BackendError(
                f"Replicate prediction {self.id} was canceled{because} (from the web page or "
                f"the API, or at its Cancel-After deadline): {self.web_url}"
            )
        if self.status == "aborted":
            return BackendError(
                f"Replicate prediction {self.id} was aborted before it started{because}: its "
                "Cancel-After deadline passed while it waited for a machine (not charged); "
                "try again, or raise timeout_s"
            )
        return None

    def _report(self) -> None:
        steps = log_progress(self.prediction.get("logs"))
        if steps is not None:
            self.progress(steps[0], steps[1], self.status)
        else:
            self.progress(0, 0, self.status)
