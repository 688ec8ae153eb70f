"""Metadata benchmark: what writing provenance into a PNG adds to the image write.

    .venv/bin/python bench/metadata.py [--runs N]

One 1024x1024 mock picture (about 1.5 MB of PNG) is written the way
`imagen generate` writes it: (a) today's write, `write_new` (temp file, fsync,
link), and (b) the same after `embed` adds the A1111 `parameters` and `imagen`
chunks (chunk-level: no decoding, no re-encoding). Interleaved, medians of
--runs. Target: (b) - (a) <= 2 ms. Exits 1 when missed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import tempfile
import time
from pathlib import Path

from figures import Figures

TARGET_MS = 2.0


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=60)
    args = parser.parse_args()

    import attrs

    from imagen_core.models import Generation, Request, Result
    from imagen_core.pipeline import sidecar_dict, write_new
    from imagen_core.provenance.embed import embed, parameters_text
    from imagen_mock.picture import render_png

    request = Request("a lighthouse on a cliff at dusk", seed=42, negative="text, watermark")
    image = render_png(request.prompt, 42, 1024, 1024)
    result = Result(image=image, seed=42, model="mock-procedural-v1", metadata={"steps": 8})
    record = Generation(
        request=request,
        backend="mock",
        backend_type="mock",
        prompt_sent=request.prompt,
        started_at=dt.datetime.now(dt.timezone.utc),
        result=result,
    )
    plain, with_meta = [], []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for run in range(args.runs):
            started = time.perf_counter()
            write_new(folder / f"plain-{run}.png", image)
            plain.append(time.perf_counter() - started)

            started = time.perf_counter()
            data = sidecar_dict(attrs.evolve(record, path=folder / f"meta-{run}.png"))
            del data["image"]
            text = parameters_text(record, 1024, 1024)
            write_new(folder / f"meta-{run}.png", embed(image, "image/png", text, data))
            with_meta.append(time.perf_counter() - started)
    base, subject = statistics.median(plain) * 1000, statistics.median(with_meta) * 1000
    extra = subject - base
    figures = Figures("metadata")
    figures.add(
        "provenance chunks added to a 1024x1024 PNG write (embed + write_new)",
        extra,
        unit="ms",
        at_most=TARGET_MS,
        baseline=f"{base:.2f} ms",
        measured=f"{subject:.2f} ms ({subject / base:.3f}x)",
    )
    return figures.report()


if __name__ == "__main__":
    sys.exit(main())
