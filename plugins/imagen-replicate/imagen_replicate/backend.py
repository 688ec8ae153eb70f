"""The ``replicate`` backend: one imagen Request -> one Replicate prediction -> Result.

The token is read from the environment when an image is made, used for that one
prediction and kept nowhere else: not on the backend, not in the Result.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from typing import TYPE_CHECKING, Any

from imagen_core import BackendError, Result, require_env, warn
from imagen_core.errors import Unsupported
from imagen_core.family_mapping import check_cfg, warn_mapping
from imagen_replicate.client import ReplicateClient
from imagen_replicate.families import UNKNOWN, Family, family_for
from imagen_replicate.outputs import decode_data_url, image_type, output_urls, safe_input, short_url
from imagen_replicate.pacing import Pacing
from imagen_replicate.prediction import PredictionRun
from imagen_replicate.pricing import PriceTable, table

if TYPE_CHECKING:
    from imagen_core import ImageInput, Progress, Request
    from imagen_core.models import Capabilities
    from imagen_replicate.config import ModelRef, ReplicateConfig

# Tests replace this to run retries and timeouts without waiting.
DEFAULT_PACING = Pacing()
# Seeds are picked below 2**31: some models cap the seed there (ideogram-v3).
SEED_LIMIT = 2**31
# Replicate's input-files docs: a data URI "is only recommended if the file is
# less than 1MB"; bigger files go through the Files API (up to 100 MB).
DATA_URI_MAX_BYTES = 1_000_000
# An uploaded file is reused while it has at least this long to live (they
# expire after a day).
UPLOAD_REUSE_MARGIN = dt.timedelta(hours=1)


class ReplicateBackend:
    """Runs the configured model on Replicate. No ``device``: a cloud API runs
    beside local backends in ``imagen compare --parallel``."""

    def __init__(
        self,
        config: ReplicateConfig,
        *,
        pacing: Pacing | None = None,
        prices: PriceTable | None = None,
    ) -> None:
        self.config = config
        self._pacing = pacing
        self._prices = prices
        # sha256 -> (urls.get, expires_at) of the inputs this backend has uploaded.
        self._uploaded: dict[str, tuple[str, dt.datetime | None]] = {}

    @property
    def family(self) -> Family:
        return family_for(self.config.model_ref.slug, self.config.family)

    def capabilities(self) -> Capabilities:
        """What the model's family takes (families.json ``inputs``); the core
        checks every request against it before calling generate."""
        return self.family.capabilities()

    def __repr__(self) -> str:
        return f"ReplicateBackend(model={self.config.model!r}, base_url={self.config.base_url!r})"

    def generate(self, request: Request, progress: Progress) -> Result:
        token = require_env(self.config.api_token_env)
        model = self.config.model_ref
        family = self.family
        check_cfg("replicate", request.extra.get("cfg"))
        # The core refuses such a request before calling; a library caller that
        # calls the backend itself gets the same answer.
        lacking = family.capabilities().lacks(request)
        if lacking is not None:
            raise Unsupported(f"replicate: {model.slug} ({family.name}) cannot take {lacking}")

        pacing = self._pacing or DEFAULT_PACING
        deadline = pacing.clock() + self.config.timeout_s
        client = ReplicateClient(
            self.config.base_url,
            token,
            token_env=self.config.api_token_env,
            pacing=pacing,
            deadline=deadline,
        )
        try:
            if request.inputs:
                progress(0, 0, "uploading inputs")
            files = {item.sha256: self._file(client, item) for item in request.inputs}
        except BaseException:
            client.close()
            raise
        # Seed 0 means "pick one": picked here and sent, so the Result reports it.
        picked = request.seed or random.SystemRandom().randrange(1, SEED_LIMIT)
        mapped = family.build_input(request, picked, files)
        warn_mapping(
            "replicate",
            model.slug,
            mapped.ignored,
            mapped.adjusted,
            unknown=family is UNKNOWN,
            extra_key="input",
        )
        # The block's input is passed as given and wins over the mapped values.
        model_input = {**mapped.input, **self.config.input}
        seed = _seed_sent(model_input, picked)
        run = PredictionRun(
            client,
            pacing=pacing,
            deadline=deadline,
            timeout_s=self.config.timeout_s,
            progress=progress,
        )
        try:
            image, mime_type, urls = self._run(run, model, model_input)
        finally:
            client.close()
        progress(1, 1, run.status)
        cost, basis = self._cost(model, run, len(urls))
        return Result(
            image=image,
            seed=seed,
            model=self.config.model,
            mime_type=mime_type,
            cost_usd=cost,
            metadata={
                "prediction_id": run.id,
                "prediction_url": run.web_url,
                "status": run.status,
                "model": run.prediction.get("model") or model.slug,
                "version": run.prediction.get("version"),
                "family": family.name,
                "outputs": [short_url(url) for url in urls],
                "predict_time_s": run.predict_time_s,
                "input": safe_input(model_input),
                "cost_basis": basis,
            },
        )

    def _file(self, client: ReplicateClient, item: ImageInput) -> str:
        """The URI a model input takes for ``item``: a data: URI when it is small,
        else the URL of an upload to Replicate's Files API (reused while fresh)."""
        if len(item.data) < DATA_URI_MAX_BYTES:
            return item.data_uri()
        now = dt.datetime.now(dt.timezone.utc)
        known = self._uploaded.get(item.sha256)
        if known is not None and (known[1] is None or known[1] - now > UPLOAD_REUSE_MARGIN):
            return known[0]
        uploaded = client.upload(item, f"{item.sha256[:16]}.{item.extension}")
        url = str(uploaded["urls"]["get"])
        self._uploaded[item.sha256] = (url, _timestamp(uploaded.get("expires_at")))
        return url

    def _run(
        self, run: PredictionRun, model: ModelRef, model_input: dict[str, Any]
    ) -> tuple[bytes, str, list[str]]:
        timeout_s = self.config.timeout_s
        try:
            run.start(
                model,
                model_input,
                wait_s=max(1, min(self.config.wait_s, math.floor(timeout_s))),
                cancel_after=_cancel_after(timeout_s),
            )
        except KeyboardInterrupt:
            warn(
                "replicate: interrupted before Replicate answered: a prediction may have been "
                f"created; Replicate cancels it by its {_cancel_after(timeout_s)} deadline, or "
                "cancel it at https://replicate.com/predictions"
            )
            raise
        try:
            run.wait_for_output()
            failure = run.failure()
            if failure is not None:
                raise failure
            urls = output_urls(run.prediction.get("output"))
            if not urls:
                removed = " (its data was removed)" if run.prediction.get("data_removed") else ""
                raise BackendError(
                    f"Replicate prediction {run.id} {run.status} but has no output "
                    f"file{removed}: {run.web_url}"
                )
            run.progress(0, 0, "downloading")
            image, mime_type = _fetch(run.client, urls[0])
            run.settle()
        except BaseException as exc:
            # Ctrl-C, the timeout or any failure: a prediction left running would be
            # paid for and never used.
            if not run.finished:
                reason = run.cancel()
                if reason is not None:
                    warn(
                        f"replicate: could not cancel prediction {run.id} ({reason}); "
                        f"cancel it at {run.web_url}"
                    )
            if isinstance(exc, BackendError) and exc.transient and not run.never_ran:
                # It ran (Replicate bills that time) or may still run (the cancel
                # failed): running the job again could pay twice, so it is final.
                raise BackendError(
                    f"{exc}; not run again by imagen worker: the prediction "
                    + ("may still run" if not run.finished else "ran, and may be billed")
                ) from None
            raise
        return image, mime_type, urls

    def _cost(self, model: ModelRef, run: PredictionRun, images: int) -> tuple[float | None, str]:
        """The estimate and how it was made (for the sidecar)."""
        price = (self._prices or table()).price_for(model)
        if price is None:
            warn(
                f"replicate: no price known for {model.slug}, so its cost is unknown; add it "
                "to the pricing table (docs/backends.md, section Replicate)",
                once=f"replicate:price:{model.slug}",
            )
            return None, "no price known"
        cost = price.cost(images, run.predict_time_s)
        if cost is None:
            warn(
                f"replicate: prediction {run.id} reported no predict_time, so the cost of "
                f"{model.slug} (priced per second) is unknown",
                once=f"replicate:predict_time:{model.slug}",
            )
        return cost, price.basis(images)


def _fetch(client: ReplicateClient, url: str) -> tuple[bytes, str]:
    if url.startswith("data:"):
        try:
            data, declared = decode_data_url(url)
        except ValueError as exc:
            raise BackendError(f"Replicate's output is a broken data: URL ({exc})") from None
    else:
        data, declared = client.download(url)
    mime_type = image_type(declared, url, data)
    if mime_type is None:
        raise BackendError(
            f"Replicate's output {short_url(url)} is not an image (type "
            f"{declared or 'not given'}); is `model` an image model?"
        )
    return data, mime_type


def _timestamp(value: Any) -> dt.datetime | None:
    """An ISO time from Replicate (``2024-08-23T12:26:51.079Z``), None if unreadable."""
    if not isinstance(value, str):
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)


def _seed_sent(model_input: dict[str, Any], picked: int) -> int:
    """The seed Replicate gets: the block's ``input.seed`` when it sets one."""
    seed = model_input.get("seed")
    if isinstance(seed, int) and not isinstance(seed, bool) and seed > 0:
        return seed
    return picked


def _cancel_after(timeout_s: float) -> str:
    # Whole minutes, the form Replicate documents ("1m"), one more than the
    # timeout so that imagen's own cancel normally comes first.
    return f"{math.ceil(timeout_s / 60) + 1}m"
