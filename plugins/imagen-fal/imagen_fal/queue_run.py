"""One queued request's life: submit, poll the status until COMPLETED, fetch the
result, cancel.

fal's statuses are IN_QUEUE (with ``queue_position``), IN_PROGRESS (with ``logs``)
and COMPLETED (success or failure: the result URL then answers the output or the
model's error). The status is read as an open string, so one this code does not
know yet is waited on like IN_PROGRESS.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from imagen_core import BackendError
from imagen_core.errors import transient_status
from imagen_core.remote import tqdm_progress
from imagen_fal.client import refusal_fix

if TYPE_CHECKING:
    from imagen_core import Progress
    from imagen_core.remote import Pacing
    from imagen_fal.client import FalClient, Submitted

COMPLETED = "COMPLETED"


class QueueRun:
    """Tracks the latest state of one request as the client sees it."""

    def __init__(
        self,
        client: FalClient,
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
        self.submitted: Submitted | None = None
        self.state: dict[str, Any] = {}
        self.canceled = False

    @property
    def request_id(self) -> str:
        return self.submitted.request_id if self.submitted else ""

    @property
    def status(self) -> str:
        return str(self.state.get("status", "IN_QUEUE" if self.submitted else ""))

    @property
    def finished(self) -> bool:
        return self.status == COMPLETED

    @property
    def failed(self) -> bool:
        """COMPLETED with an error, as fal's status says."""
        return self.finished and bool(self.state.get("error"))

    @property
    def inference_time_s(self) -> float | None:
        metrics = self.state.get("metrics")
        value = metrics.get("inference_time") if isinstance(metrics, dict) else None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        return None

    def start(self, endpoint: str, model_input: dict[str, Any], *, start_timeout_s: int) -> None:
        self.progress(0, 0, "submitting")
        self.submitted = self.client.submit(endpoint, model_input, start_timeout_s=start_timeout_s)
        self.state = {"status": "IN_QUEUE", "queue_position": self.submitted.queue_position}
        self._report()

    def wait(self) -> None:
        """Poll until COMPLETED, backing off gently; past the deadline, fail (the
        caller cancels)."""
        assert self.submitted is not None
        delays = self.pacing.poll_delays()
        while True:
            self.state = self.client.status(self.submitted)
            self._report()
            if self.finished:
                return
            remaining = self.deadline - self.pacing.clock()
            if remaining <= 0:
                raise BackendError(
                    f"fal request {self.request_id} did not finish within "
                    f"timeout_s={self.timeout_s:g}s (status {self.status}); imagen asked fal "
                    "to cancel it. Raise timeout_s in the backend's block if the model needs "
                    "longer (a busy queue or a cold start can take minutes)",
                    # Canceled, so nothing is paid: a later try may find a shorter queue.
                    transient=True,
                )
            self.pacing.sleep(min(next(delays), remaining))

    def output(self) -> dict[str, Any]:
        """The model's output JSON; a BackendError with the model's own error text
        when it failed."""
        assert self.submitted is not None
        response = self.client.result(self.submitted, failed=self.failed)
        body: Any
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code == 200 and isinstance(body, dict):
            return body
        detail = self.client.detail(response)
        kind = self.state.get("error_type") or (
            response.headers.get("X-Fal-Error-Type") if response.status_code >= 400 else None
        )
        if response.status_code == 422:
            return self._raise(f"refused the input: {detail} (HTTP 422); {refusal_fix(response)}")
        if response.status_code == 200:
            return self._raise(f"answered with something that is not an output: {detail}")
        if self.failed or response.status_code < 500:
            because = f" ({kind})" if kind else ""
            # fal bills no failed run: one that failed on its server may pass later.
            return self._raise(
                f"failed{because}: {detail} (HTTP {response.status_code})",
                transient=self.failed and transient_status(response.status_code),
            )
        # A 5xx for a request the status called a success: when fal's error names
        # the run's failure it was not billed; otherwise the output may be made.
        raise self.client.failure(
            response, f"fetching the result of request {self.request_id}", again=bool(kind)
        )

    def _raise(self, what: str, *, transient: bool = False) -> dict[str, Any]:
        raise BackendError(f"fal request {self.request_id} {what}", transient=transient)

    def cancel(self) -> str | None:
        """Ask fal to cancel the request; the reason when that failed."""
        if self.submitted is None:
            return None
        try:
            answer = self.client.cancel(self.submitted)
        except BackendError as exc:
            return str(exc)
        self.canceled = answer != "ALREADY_COMPLETED"
        return None

    def _report(self) -> None:
        if self.status == "IN_QUEUE":
            position = self.state.get("queue_position")
            where = f", position {position}" if isinstance(position, int) else ""
            self.progress(0, 0, f"in queue{where}")
            return
        messages = _messages(self.state.get("logs"))
        steps = tqdm_progress("\n".join(messages)) if messages else None
        label = "running" if self.status == "IN_PROGRESS" else self.status.lower()
        if steps is not None:
            self.progress(steps[0], steps[1], label)
        else:
            self.progress(0, 0, label)


def _messages(logs: Any) -> list[str]:
    """The text of each log entry ({message, level, source, timestamp})."""
    if not isinstance(logs, list):
        return []
    return [str(e["message"]) for e in logs if isinstance(e, dict) and "message" in e]
