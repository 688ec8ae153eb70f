"""One generation: request -> backend -> atomic write -> sidecar -> sinks -> preview.

This is the library API (``Session`` and ``generate``); the CLI, compare and the
worker all go through it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import os
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from imagen_core import config as config_mod
from imagen_core import naming
from imagen_core._version import __version__
from imagen_core.config import Instance
from imagen_core.errors import (
    BackendError,
    ImagenError,
    MissingEnvError,
    OutputError,
    Unsupported,
    UsageError,
    describe,
)
from imagen_core.notices import warn
from imagen_core.plugins import get_plugin_manager
from imagen_core.registry import collect

if TYPE_CHECKING:
    from collections.abc import Callable

    from imagen_core.budgets import BudgetBook
    from imagen_core.cancel import CancelScope
    from imagen_core.config import Config
    from imagen_core.models import Estimate, Generation, Progress, Request, Result
    from imagen_core.plugins import ImagenPluginManager
    from imagen_core.queue import Queue
    from imagen_core.registry import Registry
    from imagen_core.usage import UsageSource

MODES = ("auto", "on", "off")


def resolve_mode(configured: str, env_var: str, flag: bool | None) -> str:
    """config -> environment -> flag, the later one winning."""
    mode = configured
    env = os.environ.get(env_var, "").strip().lower()
    if env:
        if env not in MODES:
            raise UsageError(f"{env_var} must be auto, on or off, got {env!r}")
        mode = env
    if flag is not None:
        mode = "on" if flag else "off"
    return mode


def apply_style(request: Request, styles: dict[str, str]) -> str:
    """The prompt the backend receives: the request's prompt inside its style."""
    if request.style is None:
        return request.prompt
    if request.style not in styles:
        known = ", ".join(sorted(styles)) or "none (add some under styles: in imagen.yaml)"
        raise UsageError(f"unknown style {request.style!r}; known styles: {known}")
    return styles[request.style].replace("{prompt}", request.prompt)


class Session:
    """Config, plugins and live backends for any number of generations.

    >>> session = Session()                          # imagen.yaml found as the CLI finds it
    >>> generation = session.generate(Request("a lighthouse at dusk"))
    >>> generation.path, generation.result.seed
    """

    def __init__(
        self,
        config: Config | str | os.PathLike[str] | None = None,
        *,
        plugin_manager: ImagenPluginManager | None = None,
        warn: Callable[[str], None] = warn,
    ) -> None:
        self.pm = plugin_manager or get_plugin_manager()
        self.registry: Registry = collect(self.pm)
        if config is None or isinstance(config, (str, os.PathLike)):
            config = config_mod.load(self.registry, config)
        self.config: Config = config
        self.warn = warn
        self._warned: set[str] = set()  # what a once-only warning already said
        self._backends: dict[str, Any] = {}
        self._sinks: list[tuple[Instance, Any]] | None = None
        # compare --parallel generates from several threads: building and sinks
        # are serialised so that no plugin ever sees concurrent calls of its own.
        self._lock = threading.RLock()

    # ----------------------------------------------------------- building
    def backend(self, name: str | None = None) -> tuple[Instance, Any]:
        """The instance ``name`` (None = default) and its backend, built once."""
        instance = self.config.backend(name, self.registry)
        with self._lock:
            if instance.name not in self._backends:
                reg = self.registry.backends[instance.type]
                self._backends[instance.name] = _build(reg.factory, instance, "backend")
        return instance, self._backends[instance.name]

    def sinks(self) -> list[tuple[Instance, Any]]:
        """The active sinks, built once; one that cannot start is reported and left out."""
        with self._lock:
            return self._build_sinks()

    def _build_sinks(self) -> list[tuple[Instance, Any]]:
        if self._sinks is None:
            built = []
            for instance in self.config.active_sinks(self.registry):
                if instance.problem:
                    self.warn(instance.problem)
                    continue
                reg = self.registry.sinks[instance.type]
                try:
                    built.append((instance, _build(reg.factory, instance, "sink")))
                except ImagenError as exc:
                    self.warn(f"{instance.name}: {exc}")
            self._sinks = built
        return self._sinks

    def queue(self) -> Queue:
        """The job queue of ``queue:`` (default: the built-in sqlite queue)."""
        instance = self.config.queue(self.registry)
        factory = self.registry.queues[instance.type].factory
        return _build(factory, instance, "queue")  # type: ignore[no-any-return]

    def source(self, name: str) -> UsageSource:
        """The sink instance ``name`` as a usage source (``imagen usage --source``).

        Any sink that can read back what it stored has ``rows(since=, until=)``;
        it is built even when turned off for writing."""
        instance = self.config.sinks.get(name)
        if instance is None or instance.settings is None:
            reg = self.registry.sinks.get(instance.type if instance else name)
            if reg is None:
                if instance is not None and instance.problem:
                    raise UsageError(instance.problem)
                known = ", ".join(sorted(set(self.config.sinks) | set(self.registry.sinks)))
                raise UsageError(f"unknown usage source {name!r}; sinks are: {known or 'none'}")
            instance = Instance(name, reg.name, reg.config())
        sink = _build(self.registry.sinks[instance.type].factory, instance, "sink")
        if not callable(getattr(sink, "rows", None)):
            raise UsageError(
                f"sink {name!r} (type {instance.type}) cannot be read as a usage source"
            )
        return sink  # type: ignore[no-any-return]

    # ----------------------------------------------------------- running
    def generate(
        self,
        request: Request,
        *,
        output: str | os.PathLike[str] | None = None,
        sidecar: bool | None = None,
        preview: bool | None = None,
        cloud: bool | None = None,
        progress: Progress | None = None,
        cancel: CancelScope | None = None,
        metadata: bool | None = None,
        max_cost_usd: float | None = None,
    ) -> Generation:
        """Generate one image and write it; return the Generation (path + Result).

        ``sidecar``/``preview``/``cloud``/``metadata`` left as None follow
        imagen.yaml and the environment; ``cloud=False`` is ``--no-cloud``,
        ``metadata=False`` is ``--no-metadata``. ``cancel`` lets another
        thread stop the backend call (the worker: a canceled job).
        ``max_cost_usd`` refuses a run whose estimate is above it (``--max-cost``);
        ``budgets:`` are checked and the estimate reserved before the backend is
        called (BudgetExceeded). Raises ImagenError, or KeyboardInterrupt when
        interrupted or canceled."""
        reserved: list[int] = []
        try:
            return self._generate(
                request,
                output=output,
                sidecar=sidecar,
                preview=preview,
                cloud=cloud,
                progress=progress,
                cancel=cancel,
                metadata=metadata,
                max_cost_usd=max_cost_usd,
                reserved=reserved,
            )
        finally:
            # After the sinks ran: the ledger's row (with the real cost) now counts.
            for reservation in reserved:
                self.budget_book().release(reservation)

    def estimate(self, request: Request) -> Estimate:
        """The price of one image of ``request`` on its backend, before it runs:
        the backend's own estimate, or for a backend priced by the second (a local
        GPU), the rate times the median of its last runs in the ledger."""
        from imagen_core.models import Estimate, estimate_of

        instance, backend = self.backend(request.backend)
        estimate = estimate_of(backend, request)
        rate = _rate(instance, backend)
        if rate is None or (estimate.basis in ("computed", "estimated") and estimate.usd):
            return estimate
        from imagen_core.ledger import typical_seconds

        ledgers = [i for i in self.config.active_sinks(self.registry) if i.type == "ledger"]
        path = getattr(ledgers[0].settings, "path", None) if ledgers else None
        seconds = typical_seconds(path, instance.name) if ledgers else None
        if seconds is None:
            return Estimate(None, "unknown", "a price per second, and no run recorded yet")
        return Estimate(
            round(rate * seconds, 6),
            "estimated",
            f"${rate * 3600:.2f}/hour x {seconds:.1f} s (the median of its last runs)",
        )

    def budget_book(self) -> BudgetBook:
        """The budgets of imagen.yaml, kept in the ledger's file."""
        from imagen_core.budgets import BudgetBook

        ledgers = [i for i in self.config.active_sinks(self.registry) if i.type == "ledger"]
        if not ledgers:
            raise UsageError(
                "budgets: need the ledger sink to know what was spent; "
                "remove `ledger: false` from sinks: in imagen.yaml"
            )
        from imagen_core.ledger import default_path

        return BudgetBook(ledgers[0].settings.path or default_path(), self.config.budgets)

    def check_max_cost(self, request: Request, max_cost_usd: float) -> Estimate:
        """Refuse ``request`` when its estimate is above ``max_cost_usd`` or unknown."""
        instance, _ = self.backend(request.backend)
        estimate = self.estimate(request)
        if estimate.usd is None:
            raise UsageError(
                f"--max-cost: the price of backend {instance.name!r} is unknown, so it "
                "cannot be held to a limit; drop --max-cost to run it"
            )
        if estimate.usd > max_cost_usd:
            raise UsageError(
                f"--max-cost ${max_cost_usd:.4f}: backend {instance.name!r} is estimated "
                f"at ${estimate.usd:.4f} for this image ({estimate.source or estimate.basis})"
            )
        return estimate

    def reserve(self, request: Request, *, max_cost_usd: float | None = None) -> int | None:
        """Refuse a run over ``max_cost_usd`` or over a budget; reserve its estimate.
        Returns the reservation to release once the run is recorded (None: no budget)."""
        if max_cost_usd is not None:
            self.check_max_cost(request, max_cost_usd)
        if not self.config.budgets:
            return None
        from imagen_core.identity import caller

        instance, _ = self.backend(request.backend)
        return self.budget_book().reserve(instance.name, caller(), self.estimate(request).usd)

    def _generate(
        self,
        request: Request,
        *,
        output: str | os.PathLike[str] | None = None,
        sidecar: bool | None = None,
        preview: bool | None = None,
        cloud: bool | None = None,
        progress: Progress | None = None,
        cancel: CancelScope | None = None,
        metadata: bool | None = None,
        max_cost_usd: float | None = None,
        reserved: list[int],
    ) -> Generation:
        # Not imported with this module: `imagen usage` and `jobs` open a session only.
        from imagen_core.models import Generation, Result, no_progress

        out = self.config.output
        instance = self.config.backend(request.backend, self.registry)
        prompt_sent = apply_style(request, self.config.styles)
        cloud_sync = resolve_mode(
            out.cloud_sync, "IMAGEN_CLOUD_SYNC", False if cloud is False else None
        )
        preview_mode = self.preview_mode(preview)
        folder, file = _explicit_output(output)
        _check_writable(file.parent if file else folder or out.dir, output is not None)
        for _instance, sink in self.sinks():
            check = getattr(sink, "check", None)
            if check is not None:
                check(cloud_sync=cloud_sync)
        _, backend = self.backend(instance.name)
        self.check_capabilities(request, instance.name, backend)
        reservation = self.reserve(request, max_cost_usd=max_cost_usd)
        if reservation is not None:
            reserved.append(reservation)

        sent = attrs.evolve(request, prompt=prompt_sent, backend=instance.name)
        record = Generation(
            request=request,
            backend=instance.name,
            backend_type=instance.type,
            prompt_sent=prompt_sent,
            started_at=dt.datetime.now(dt.timezone.utc),
            cloud_sync=cloud_sync,
        )
        started = time.perf_counter()
        try:
            try:
                with cancel.cancelable() if cancel is not None else contextlib.nullcontext():
                    result = backend.generate(sent, progress or no_progress)
            finally:
                # A progress line with close() (the CLI's bar) is erased when the
                # backend is done: a warning or a hint after it gets a clean line.
                close = getattr(progress, "close", None)
                if callable(close):
                    close()
            if not isinstance(result, Result) or not result.image:
                raise BackendError(f"backend {instance.name!r} returned no image ({result!r})")
        except KeyboardInterrupt:
            # The backend has cancelled its remote job; sinks (the ledger) still hear of it.
            self._send(attrs.evolve(record, error="interrupted"))
            raise
        except Exception as exc:
            if isinstance(exc, MissingEnvError):
                exc = exc.for_instance(instance.name)
            message = str(exc) if isinstance(exc, ImagenError) else describe(exc)
            self._send(attrs.evolve(record, error=message))
            if isinstance(exc, ImagenError):
                raise exc from None
            raise BackendError(f"backend {instance.name!r} failed: {message}") from exc
        result = _priced(
            attrs.evolve(
                result,
                backend=instance.name,
                latency_s=round(time.perf_counter() - started, 4),
                metadata={**result.metadata, "fingerprint": self._fingerprint(instance, result)},
            ),
            _rate(instance, backend),
        )
        want_sidecar = out.sidecar if sidecar is None else sidecar
        made = attrs.evolve(record, result=result)
        reported: set[str] = set()
        target: Path | None = None
        try:
            target = self._target(request, result, folder, file)
            result = _convert_for(target, result)
            body: dict[str, Any] | None = None
            if out.metadata if metadata is None else metadata:
                result, body = self._embed(attrs.evolve(record, result=result), target)
            made = attrs.evolve(record, result=result)
            # The record goes first (a ledger row saying "interrupted"), then the
            # sidecar, then the image: whatever kills us, an image at its final
            # name has both, and its row says what happened.
            reported = self._begin(made)
            path, sidecar_path, sidecar_problem = write_with_sidecar(
                target,
                result.image,
                (lambda p: _sidecar_body(made, p, body)) if want_sidecar else None,
            )
        except OutputError as exc:
            # The image exists (and may have been paid for): never lose it.
            try:
                rescued = _rescue(made, target)
            except OutputError as again:
                message = f"{exc}; saving it to the rescue folder failed too: {again}"
                self._send(attrs.evolve(made, error=f"{message}; the image is lost"), reported)
                raise OutputError(f"{message}; the image is lost") from None
            message = f"{exc}; the image was saved to {rescued} instead"
            self._send(attrs.evolve(made, error=message), reported)
            raise OutputError(message) from None
        record = attrs.evolve(made, path=path, sidecar=sidecar_path)
        if sidecar_problem:
            self.warn(f"sidecar: {sidecar_problem}")
        self._send(record, reported)
        self.preview(path, request, preview_mode)
        return record

    def check_capabilities(self, request: Request, name: str, backend: Any) -> None:
        """Raise Unsupported, naming what ``backend`` lacks for ``request`` and the
        configured backends that have it, before anything is spent."""
        from imagen_core.models import capabilities_of

        lacking = capabilities_of(backend).lacks(request)
        if lacking is None:
            return
        able = [other for other in self.able_backends(request) if other != name]
        hint = f"; backends that can: {', '.join(able)}" if able else ""
        raise Unsupported(f"backend {name!r} cannot take {lacking}{hint}")

    def able_backends(self, request: Request) -> list[str]:
        """The configured backend instances whose capabilities cover ``request``
        and the installed types usable by name without a block (one that cannot be
        built here, e.g. for a missing token, is left out)."""
        from imagen_core.models import capabilities_of

        able = []
        for name in dict.fromkeys([*self.config.backends, *self.registry.backends]):
            try:
                _, backend = self.backend(name)
                if capabilities_of(backend).lacks(request) is None:
                    able.append(name)
            except Exception:  # only a hint: a backend that cannot start is no answer
                continue
        return able

    def _fingerprint(self, instance: Instance, result: Result) -> dict[str, Any]:
        """What decides the pixels, as far as imagen knows: its version and the
        backend plugin's, then whatever the backend reports under ``fingerprint``
        (a server's version and device, a workflow's hash, a model version id)."""
        reported = result.metadata.get("fingerprint")
        return {
            "imagen": __version__,
            "plugin": self.registry.backends[instance.type].owner,
            **(reported if isinstance(reported, dict) else {}),
        }

    def _embed(self, record: Generation, target: Path) -> tuple[Result, dict[str, Any]]:
        """The result with its provenance written into the image bytes, and the
        sidecar's dict for it (computed once: the sidecar reuses it)."""
        from imagen_core.provenance.embed import Skipped, embed, parameters_text

        result = record.result
        assert result is not None
        body = sidecar_dict(attrs.evolve(record, path=target))
        # The final name is known only once it is written.
        data = {key: value for key, value in body.items() if key != "image"}
        text = parameters_text(record, data["width"], data["height"])
        try:
            embedded = embed(result.image, result.mime_type, text, data)
            return attrs.evolve(result, image=embedded), body
        except Skipped as exc:
            return attrs.evolve(
                result, metadata={**result.metadata, "embedded": f"no: {exc}"}
            ), body
        except ValueError as exc:  # a file that is not what its type says: keep it as is
            self.warn(f"metadata: not written into the image ({exc})")
            return result, body

    def _target(
        self, request: Request, result: Result, folder: Path | None, file: Path | None
    ) -> Path:
        if file is not None:
            return (
                file.resolve()
                if file.suffix
                else file.resolve().with_suffix(f".{result.extension}")
            )
        fields: dict[str, Any] = {}
        for extra in reversed(self._naming_fields(request, result)):
            fields.update(extra or {})
        target = naming.resolve(folder or self.config.output.dir, self.config.output.naming, fields)
        if target.suffix.lower() not in _FORMATS:  # a template without {ext}
            target = target.with_name(f"{target.name}.{result.extension}")
        return target

    def _naming_fields(self, request: Request, result: Result) -> list[dict[str, Any]]:
        """Every plugin's naming fields. One that raises is warned about (once)
        and left out: a plugin's bug must not cost the image."""
        hook = self.pm.hook.naming_fields
        try:
            return list(hook(request=request, result=result))
        except Exception:
            pass  # find which plugin, and keep the others' fields
        found: list[dict[str, Any]] = []
        impls = hook.get_hookimpls()
        for impl in reversed(impls):  # pluggy's call order: the last registered first
            others = [other.plugin for other in impls if other is not impl]
            try:
                value = self.pm.subset_hook_caller("naming_fields", others)(
                    request=request, result=result
                )
            except Exception as exc:
                label = self.pm.describe(impl.plugin).label
                if label not in self._warned:
                    self._warned.add(label)
                    self.warn(
                        f"naming_fields of {label} failed: {describe(exc)} "
                        "(its fields are left out)"
                    )
                continue
            found += value
        return found

    def _begin(self, record: Generation) -> set[str]:
        """Tell the sinks that can keep a pending record (the ledger) that an image
        is about to be written: if the process dies now, the record says so.
        Returns the sinks that failed (and were reported)."""
        failed = set()
        with self._lock:
            for instance, sink in self.sinks():
                begin = getattr(sink, "begin", None)
                if begin is None:
                    continue
                try:
                    begin(record)
                except Exception as exc:  # sinks are best-effort by contract
                    self.warn(f"{instance.name}: {describe(exc)}")
                    failed.add(instance.name)
        return failed

    def _send(self, record: Generation, reported: set[str] | frozenset[str] = frozenset()) -> None:
        """Hand ``record`` to every sink; a failure is one warning (none for the
        sinks in ``reported``, whose ``begin`` failed and was reported)."""
        with self._lock:
            for instance, sink in self.sinks():
                try:
                    sink.send(record)
                except Exception as exc:  # sinks are best-effort by contract
                    if instance.name not in reported:
                        self.warn(f"{instance.name}: {describe(exc)}")

    def preview_mode(self, flag: bool | None = None) -> str:
        """output.preview, then IMAGEN_PREVIEW, then the flag (``--preview``)."""
        return resolve_mode(self.config.output.preview, "IMAGEN_PREVIEW", flag)

    def preview(self, path: Path, request: Request, mode: str) -> None:
        """Show ``path`` through the ``preview`` hook; a failure is one warning."""
        if mode == "off":
            return
        try:
            self.pm.hook.preview(path=path, request=request, mode=mode, config=self.config)
        except Exception as exc:
            self.warn(f"preview: {describe(exc)}")


def generate(
    request: Request, *, config: Config | str | os.PathLike[str] | None = None, **options: Any
) -> Generation:
    """One-shot ``Session(config).generate(request, **options)``."""
    return Session(config).generate(request, **options)


# ----------------------------------------------------------------- helpers


def _rate(instance: Instance, backend: Any) -> float | None:
    """USD per second of a backend priced by its time: the block's core key
    ``usd_per_second``, else the backend's own (ComfyUI's ``gpu_usd_per_hour``)."""
    if instance.usd_per_second is not None:
        return instance.usd_per_second
    rate = getattr(backend, "usd_per_second", None)
    return float(rate) if isinstance(rate, (int, float)) and not isinstance(rate, bool) else None


def _priced(result: Result, rate: float | None) -> Result:
    """The result with its cost basis, and a cost from the rate when it has none."""
    if rate is not None and not result.cost_usd:
        ran = result.metadata.get("execution_s")
        seconds = ran if isinstance(ran, (int, float)) and ran >= 0 else result.latency_s
        return attrs.evolve(result, cost_usd=round(rate * seconds, 6), cost_basis="estimated")
    if result.cost_usd is not None and result.cost_basis is None:
        return attrs.evolve(result, cost_basis="computed")
    return result


def _build(factory: Callable[[Any], Any], instance: Instance, kind: str) -> Any:
    try:
        return factory(instance.settings)
    except MissingEnvError as exc:
        if kind == "queue":  # one block, no instance name: queue.dsn_env
            raise MissingEnvError(exc.variable, exc.key, f"queue.{exc.key}") from None
        raise exc.for_instance(instance.name, f"{kind}s") from None
    except ImagenError:
        raise
    except Exception as exc:
        raise BackendError(
            f"{kind} {instance.name!r} (type {instance.type}) could not start: {describe(exc)}"
        ) from exc


def _explicit_output(output: str | os.PathLike[str] | None) -> tuple[Path | None, Path | None]:
    """``--output`` as (folder for the naming template, exact file), at most one set."""
    if output is None:
        return None, None
    text = os.fspath(output)
    path = Path(text).expanduser()
    too_long = [part for part in path.parts if len(os.fsencode(part)) > naming.NAME_MAX]
    if too_long:
        raise UsageError(
            f"--output: the name {too_long[0][:40]}... is {len(os.fsencode(too_long[0]))} "
            f"bytes long; file systems take {naming.NAME_MAX}: give a shorter one"
        )
    # Path() drops a trailing slash, so look at the text: "out/" is a folder to be.
    if text.endswith(("/", os.sep)) or path.is_dir():
        return path, None
    if path.suffix and path.suffix.lower() not in _FORMATS:
        raise UsageError(
            f"--output {text}: imagen writes {', '.join(_FORMATS)} files; "
            "use one of those suffixes (or none, and the image's own is added)"
        )
    return None, path


def _check_writable(folder: Path, explicit: bool = False) -> None:
    """Fail before generating (and paying) when the image could not be written."""
    fix = "pass another --output" if explicit else "set output.dir in imagen.yaml or pass --output"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(
            f"cannot create output folder {folder}: {exc.strerror or exc}; {fix}"
        ) from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"output folder {folder} is not writable; {fix}")


_FORMATS = {
    ".png": ("PNG", "image/png"),
    ".jpg": ("JPEG", "image/jpeg"),
    ".jpeg": ("JPEG", "image/jpeg"),
    ".webp": ("WEBP", "image/webp"),
}


def _convert_for(target: Path, result: Result) -> Result:
    """The Result in the format the target's suffix asks for (``--output x.jpg``)."""
    wanted = _FORMATS.get(target.suffix.lower())
    if wanted is None or wanted[1] == result.mime_type:
        return result
    import io

    from PIL import Image

    with Image.open(io.BytesIO(result.image)) as image:
        buffer = io.BytesIO()
        rgb = image.convert("RGB") if wanted[0] == "JPEG" else image
        rgb.save(buffer, wanted[0])
    return attrs.evolve(result, image=buffer.getvalue(), mime_type=wanted[1])


# A temporary file older than this was left by a process that died mid-write
# (writing one takes seconds): the next write to its folder removes it.
STALE_PART_S = 3600.0
SWEEP_EVERY_S = 600.0
_swept: dict[Path, float] = {}


def _sweep(folder: Path) -> None:
    """Remove the ``.imagen-*.part`` files a dead process left in ``folder``
    (at most every SWEEP_EVERY_S per folder: a folder of many images is not
    listed for each one)."""
    now = time.monotonic()
    if now - _swept.get(folder, -SWEEP_EVERY_S) < SWEEP_EVERY_S:
        return
    _swept[folder] = now
    cutoff = time.time() - STALE_PART_S
    try:  # os.scandir, not Path.glob: no pattern to compile, no Path per name
        with os.scandir(folder) as entries:
            leftovers = [
                entry
                for entry in entries
                if entry.name.startswith(".imagen-") and entry.name.endswith(".part")
            ]
    except OSError:
        return
    for part in leftovers:
        with contextlib.suppress(OSError):
            if part.stat().st_mtime < cutoff:
                Path(part.path).unlink()


def _temp(folder: Path, data: bytes) -> Path:
    """``data`` in a new hidden temporary file of ``folder``, synced to disk."""
    # Not tempfile.mkstemp: its files are mode 0600, and the image must get the
    # permissions the umask gives any new file.
    tmp = folder / f".imagen-{os.getpid()}-{os.urandom(6).hex()}.part"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def _place(tmp: Path, candidate: Path) -> bool:
    """Link ``tmp`` at ``candidate``; False when the name is taken."""
    try:
        os.link(tmp, candidate)
        return True
    except FileExistsError:
        return False
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EXDEV, errno.EMLINK):
            raise
        # No hard links here (some network and FAT filesystems).
        if candidate.exists():
            return False
        tmp.replace(candidate)
        return True


def _cannot_write(path: Path, exc: OSError) -> OutputError:
    if exc.errno == errno.ENAMETOOLONG:
        return OutputError(
            f"cannot write {path}: the name is too long ({len(path.name.encode())} bytes; "
            "file systems take 255); shorten --output or output.naming"
        )
    return OutputError(f"cannot write {path}: {exc.strerror or exc}")


def write_new(path: Path, data: bytes, *, companions: tuple[str, ...] = ()) -> Path:
    """Write ``data`` at ``path`` or, if taken, at ``stem-N.suffix``; return where.

    A name is also skipped when one of its ``companions`` (e.g. ``(".json",)`` for
    the sidecar to be written next) already exists, so an image and its sidecar
    always share a stem.

    The bytes go to a temporary file in the same folder first and are then linked
    into place, so the final name holds the whole file or nothing, and an existing
    file is never replaced (``os.link`` fails if the name exists)."""
    written, _, _ = _write(path, data, None, companions)
    return written


def write_with_sidecar(
    path: Path, data: bytes, sidecar: Callable[[Path], bytes] | None
) -> tuple[Path, Path | None, str | None]:
    """``write_new`` for an image and its JSON sidecar (``sidecar(image_path)``
    gives its bytes). The sidecar is linked into place before the image, so an
    image at its final name always has its sidecar. Returns the image path, the
    sidecar path (None when not asked or not writable) and why the sidecar could
    not be written."""
    return _write(path, data, sidecar, (".json",) if sidecar else ())


def _write(
    path: Path,
    data: bytes,
    sidecar: Callable[[Path], bytes] | None,
    companions: tuple[str, ...],
) -> tuple[Path, Path | None, str | None]:
    tmp: Path | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _sweep(path.parent)
        tmp = _temp(path.parent, data)
        problem: str | None = None
        for candidate in naming.candidates(path):
            if any(candidate.with_suffix(suffix).exists() for suffix in companions):
                continue
            side: Path | None = None
            if sidecar is not None and problem is None:
                side = candidate.with_suffix(".json")
                try:
                    side_tmp = _temp(path.parent, sidecar(candidate))
                    try:
                        placed = _place(side_tmp, side)
                    finally:
                        side_tmp.unlink(missing_ok=True)
                except OSError as exc:
                    problem = str(_cannot_write(side, exc))
                    side, placed = None, True
                if not placed:
                    continue
            try:
                if _place(tmp, candidate):
                    return candidate, side, problem
            except BaseException:
                if side is not None:  # no sidecar without its image
                    side.unlink(missing_ok=True)
                raise
            if side is not None:  # the image's name was taken meanwhile
                side.unlink(missing_ok=True)
        raise AssertionError("unreachable")  # pragma: no cover
    except OSError as exc:
        raise _cannot_write(path, exc) from None
    finally:
        if tmp is not None:
            tmp.unlink(missing_ok=True)


def _rescue(record: Generation, target: Path | None) -> Path:
    """Write the image bytes where they can always go: the system's temp folder,
    ``imagen-rescued/``, under the target's name when it is short and plain,
    else ``<time>-<hash>.<ext>`` (the target's name may be what failed)."""
    import hashlib
    import re
    import tempfile

    assert record.result is not None
    data = record.result.image
    if target is not None and re.fullmatch(r"[\w.-]{1,100}", target.name, re.ASCII):
        name = target.name
    else:
        suffix = target.suffix.lower() if target is not None else ""
        name = (
            f"{record.started_at:%Y%m%d-%H%M%S}-{hashlib.sha256(data).hexdigest()[:8]}"
            f"{suffix if suffix in _FORMATS else '.' + record.result.extension}"
        )
    return write_new(Path(tempfile.gettempdir()) / "imagen-rescued" / name, data)


def image_size(data: bytes) -> tuple[int, int] | None:
    """Width and height read from the image header, or None if unreadable."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR":
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    import io

    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            return int(width), int(height)
    except (UnidentifiedImageError, OSError, ValueError):
        return None


def _sidecar_body(record: Generation, path: Path, known: dict[str, Any] | None = None) -> bytes:
    """The sidecar's bytes; ``known`` is ``sidecar_dict`` of the same record made
    for the embedded provenance (the same image size and request), so only the
    final name and the metadata (which embedding may have added to) change."""
    import json

    if known is None:
        body = sidecar_dict(attrs.evolve(record, path=path))
    else:
        assert record.result is not None
        body = dict(known, image=path.name, metadata=record.result.metadata)
    return json.dumps(body, indent=2, default=str).encode() + b"\n"


def sidecar_dict(record: Generation) -> dict[str, Any]:
    """What the JSON sidecar holds. Never a secret: no config block is copied."""
    result = record.result
    assert result is not None and record.path is not None
    request = attrs.asdict(record.request, filter=lambda field, _value: field.name != "inputs")
    request["inputs"] = [item.describe() for item in record.request.inputs]
    # The image's own size: a backend may round the request (multiples of 16) or
    # only take an aspect ratio.
    width, height = image_size(result.image) or (record.request.width, record.request.height)
    return {
        "imagen_version": __version__,
        "created": record.started_at.isoformat(timespec="seconds"),
        "image": record.path.name,
        "prompt": record.request.prompt,
        "prompt_sent": record.prompt_sent,
        "request": request,
        "backend": {"name": record.backend, "type": record.backend_type},
        "model": result.model,
        "seed": result.seed,
        "width": width,
        "height": height,
        "mime_type": result.mime_type,
        "latency_s": result.latency_s,
        "cost_usd": result.cost_usd,
        "cost_basis": result.cost_basis,
        "metadata": result.metadata,
    }
