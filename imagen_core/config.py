"""imagen.yaml: locate it, load it (ruamel.yaml), structure it (cattrs) into typed
attrs classes, and report every problem at once with ``file:line:column``.

Each backend or sink block is structured by the attrs class its plugin registered,
so the core never knows a plugin's keys.
"""

from __future__ import annotations

import os
import re
import typing
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

import attrs

from imagen_core.errors import ConfigError, MissingEnvError, UsageError
from imagen_core.exports import lazy
from imagen_core.values import value_eq, value_hash, value_repr

if typing.TYPE_CHECKING:
    import cattrs

    # Loaded on first use (see __getattr__), as only a config with budgets needs
    # it; ``as`` re-exports it for type checkers. Config's ``budgets`` annotation
    # names it: resolving that at run time needs ``config.Budget`` touched first.
    from imagen_core.budgets import Budget as Budget  # noqa: TC004
    from imagen_core.registry import DefaultSource, Registration, Registry

CONFIG_NAME = "imagen.yaml"
# No setting is a number beyond this (seconds, prices, ratios): .inf, .nan and
# 1e300 are refused by `config validate` rather than overflowing at run time.
MAX_NUMBER = 1e9
# Values an alias may expand to (`&a [*b, *b, ...]` nested: a "billion laughs").
MAX_VALUES = 100_000
_NAME_LIKE_TYPE = r"^[a-z0-9]+$"  # compiled (by re's cache) on the error path that uses it
Mode = Literal["auto", "on", "off"]


def setting(default: Any = attrs.NOTHING, *, help: str, **kwargs: Any) -> Any:
    """An attrs field with the help text that ``imagen config init`` prints above it.

    Plugin config classes use it for every key: ``url: str = setting("http://...",
    help="where the server listens")``."""
    return attrs.field(default=default, metadata={"help": help}, **kwargs)


def _expand(value: str | Path) -> Path:
    return Path(value).expanduser()


def optional_path(value: str | Path | None) -> Path | None:
    """The converter of a path setting that may be left out (``~`` expands)."""
    return None if value is None else _expand(value)


def data_file(name: str) -> Path:
    """imagen's own state: ``$XDG_DATA_HOME/imagen/NAME`` (~/.local/share by default)."""
    data = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data) / "imagen" / name


@attrs.frozen(repr=False, eq=False)
class OutputConfig:
    __repr__ = value_repr
    __eq__ = value_eq
    __hash__ = value_hash

    dir: Path = setting(
        Path("~/Pictures/imagen"), converter=_expand, help="folder the images go to (~ expands)"
    )
    naming: str = setting(
        "{date}/{time}-{slug}-{seed}.{ext}",
        help="file name template inside dir: {date} {time} {slug} {seed} {backend} {ext}",
    )
    sidecar: bool = setting(True, help="write a JSON sidecar (request, seed, cost) beside each")
    metadata: bool = setting(
        True, help="write the prompt, seed and model into the image file itself (A1111 style)"
    )
    preview: Mode = setting(
        "auto", help="show the image in a tmux window: auto (TTY inside tmux) | on | off"
    )
    preview_command: str | None = setting(
        None,
        help="command showing {path} in the preview window (default: tmux-img --hold, chafa, ...)",
    )
    cloud_sync: Mode = setting(
        "auto", help="send results to cloud sinks: auto (when configured) | on | off"
    )


@attrs.frozen(repr=False, eq=False)
class McpConfig:
    """``mcp:`` -- the ``imagen mcp`` front door for agents (plugin imagen-mcp)."""

    __repr__ = value_repr
    __eq__ = value_eq
    __hash__ = value_hash

    confirm_above_usd: float | None = setting(
        None,
        help="a tool call whose estimated cost is above this many USD runs only when "
        "called again with confirm_spend: true",
    )


@attrs.frozen(repr=False, eq=False)
class Instance:
    """One configured backend or sink: its name, type and structured settings.

    ``type`` and, for backends, ``device`` are core keys of every block and never
    reach the plugin: ``device`` labels the GPU a backend runs on, so that
    ``imagen compare --parallel`` never runs two backends on one device at once.

    ``problem`` is set (and ``settings`` is None) when the type is not installed:
    that is an error only when the instance is used or validated."""

    __repr__ = value_repr
    __eq__ = value_eq
    __hash__ = value_hash

    name: str
    type: str
    settings: Any
    where: str = ""
    problem: str | None = None
    enabled: bool = True
    device: str | None = None
    max_in_flight: int | None = None
    usd_per_second: float | None = None


@attrs.frozen(repr=False, eq=False)
class Config:
    __repr__ = value_repr
    __eq__ = value_eq
    __hash__ = value_hash

    path: Path | None = None
    default_backend: str = setting("mock", help="backend used when --backend is not given")
    output: OutputConfig = attrs.field(factory=OutputConfig)
    styles: dict[str, str] = attrs.field(factory=dict)
    backends: dict[str, Instance] = attrs.field(factory=dict)
    sinks: dict[str, Instance] = attrs.field(factory=dict)
    queue_block: Instance | None = None
    mcp: McpConfig = attrs.field(factory=McpConfig)
    budgets: tuple[Budget, ...] = ()

    def queue(self, registry: Registry) -> Instance:
        """The job queue: the ``queue:`` block, else the built-in sqlite queue."""
        instance = self.queue_block
        if instance is None:
            reg = registry.queues.get("sqlite")
            if reg is None:
                raise UsageError("no queue type is installed (the built-in sqlite queue is off)")
            instance = Instance("queue", "sqlite", reg.config())
        if instance.problem:
            raise UsageError(instance.problem)
        return instance

    def backend(self, name: str | None, registry: Registry) -> Instance:
        """The instance ``name`` (None = default_backend) ready to build."""
        if name is not None and not name.strip():
            raise UsageError(
                "the backend name is empty: name one (see `imagen backends`), "
                "or leave --backend out for the default"
            )
        name = name or self.default_backend
        instance = self.backends.get(name)
        if instance is None and name in registry.backends:
            # A registered type needs no block to be used with its defaults.
            reg = registry.backends[name]
            if _required(reg.config):
                raise UsageError(
                    f"backend type {name!r} needs a block in imagen.yaml for its required "
                    f"keys ({', '.join(_required(reg.config))}); see `imagen config init`"
                )
            instance = Instance(name, name, reg.config())
        if instance is None:
            known = sorted(set(self.backends) | set(registry.backends))
            hint = _did_you_mean(name, known) or _plugin_hint(name)
            raise UsageError(
                f"unknown backend {name!r}{hint}; configured are "
                f"{', '.join(known) or 'none'} (see `imagen backends`)"
            )
        if instance.problem:
            raise UsageError(instance.problem)
        return instance

    def active_sinks(self, registry: Registry) -> list[Instance]:
        chosen = {n: i for n, i in self.sinks.items()}
        for name, reg in registry.sinks.items():
            if name not in chosen and _on_by_default(reg.default, self):
                chosen[name] = Instance(name, name, reg.config())
        return [i for i in chosen.values() if i.enabled]


def _on_by_default(default: DefaultSource, config: Config) -> bool:
    """Whether a sink type without a block in imagen.yaml runs (see
    ``registry.DefaultSource``). A function that raises counts as yes: the sink
    is built, and whatever is wrong is reported as its own problem."""
    if isinstance(default, bool):
        return default
    try:
        return bool(default(config))
    except Exception:
        return True


# ---------------------------------------------------------------- locating


@attrs.frozen(eq=False, repr=False)  # a lookup result, never compared: less to compile at start
class Located:
    __repr__ = value_repr

    path: Path
    source: str

    @property
    def exists(self) -> bool:
        return self.path.exists()

    def check(self) -> None:
        """A file named by --config or $IMAGEN_CONFIG must exist (only the default
        location may be absent, meaning the built-in defaults): ConfigError."""
        if not self.exists and self.source in ("--config", "$IMAGEN_CONFIG"):
            raise ConfigError(
                f"config file {self.path} does not exist (named by {self.source}); "
                "create one with `imagen config init > FILE`"
            )


def locate(explicit: str | os.PathLike[str] | None = None) -> Located:
    """``--config`` > ``$IMAGEN_CONFIG`` > ``$XDG_CONFIG_HOME/imagen.yaml`` > ``~/.config``."""
    if explicit:
        return Located(Path(explicit).expanduser(), "--config")
    if os.environ.get("IMAGEN_CONFIG"):
        return Located(Path(os.environ["IMAGEN_CONFIG"]).expanduser(), "$IMAGEN_CONFIG")
    if os.environ.get("XDG_CONFIG_HOME"):
        return Located(Path(os.environ["XDG_CONFIG_HOME"]) / CONFIG_NAME, "$XDG_CONFIG_HOME")
    return Located(Path("~/.config").expanduser() / CONFIG_NAME, "default location")


def load(
    registry: Registry, explicit: str | os.PathLike[str] | None = None, *, strict: bool = False
) -> Config:
    """Locate and load the config. No file at the default location = defaults.

    With ``strict`` the deferred problems (uninstalled backend types) are errors too."""
    located = locate(explicit)
    if not located.exists:
        located.check()
        return from_mapping({}, registry)
    try:
        data = located.path.read_bytes()
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise ConfigError(f"cannot read config file {located.path}: {reason}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - data.rfind(b"\n", 0, exc.start)
        raise ConfigError(
            f"{located.path}:{line}:{column}: not UTF-8 text (byte "
            f"{data[exc.start : exc.start + 1]!r}); save the file as UTF-8"
        ) from None
    return from_text(text, registry, path=located.path, strict=strict)


def _at(label: str, text: str, index: int) -> str:
    """``label:line:column`` of a character index into ``text``."""
    line = text.count("\n", 0, index) + 1
    return f"{label}:{line}:{index - text.rfind(chr(10), 0, index)}"


def from_text(
    text: str, registry: Registry, *, path: Path | None = None, strict: bool = False
) -> Config:
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError, YAMLError
    from ruamel.yaml.reader import ReaderError

    label = str(path) if path else "<config>"
    try:
        data = YAML(typ="rt", pure=True).load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{label}:{mark.line + 1}:{mark.column + 1}" if mark else label
        what = exc.problem or exc.context or "invalid YAML"
        raise ConfigError(f"{where}: YAML syntax error: {what}") from None
    except ReaderError as exc:  # a character YAML does not allow (a control character)
        where = _at(label, text, exc.position) if isinstance(exc.position, int) else label
        raise ConfigError(
            f"{where}: character {_codepoint(exc.character)} is not allowed in YAML; remove it "
            "(write it as an escape such as \\x07 inside double quotes if you mean it)"
        ) from None
    except YAMLError as exc:
        raise ConfigError(f"{label}: YAML error: {' '.join(str(exc).split())}") from None
    except RecursionError:
        raise ConfigError(f"{label}: YAML nested too deeply to read") from None
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        # An explicit tag whose constructor refuses the value (`!!int comfyui`).
        raise ConfigError(_tag_problem(text, label, exc)) from None
    return from_mapping(data if data is not None else {}, registry, path=path, strict=strict)


def _codepoint(character: object) -> str:
    code = character if isinstance(character, int) else ord(str(character)[:1] or "?")
    return f"U+{code:04X}"


def _tag_problem(text: str, label: str, exc: BaseException) -> str:
    """Where the value whose explicit tag failed is: compose the document (no
    constructing) and construct its tagged scalars one at a time."""
    from ruamel.yaml import YAML
    from ruamel.yaml.nodes import MappingNode, ScalarNode, SequenceNode

    yaml = YAML(typ="rt", pure=True)
    reason = " ".join(str(exc).split()) or type(exc).__name__
    try:
        root = yaml.compose(text)
    except Exception:
        return f"{label}: YAML error: {reason}"
    stack = [root]
    seen: set[int] = set()
    while stack:
        node = stack.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, MappingNode):
            stack += [item for pair in reversed(node.value) for item in reversed(pair)]
        elif isinstance(node, SequenceNode):
            stack += list(reversed(node.value))
        elif isinstance(node, ScalarNode):
            try:
                YAML(typ="rt", pure=True).constructor.construct_object(node, deep=True)
            except Exception:
                mark = node.start_mark
                tag = str(getattr(node.tag, "value", node.tag))
                tag = tag.replace("tag:yaml.org,2002:", "!!")
                return (
                    f"{label}:{mark.line + 1}:{mark.column + 1}: the tag {tag} cannot hold "
                    f"{node.value!r}; remove the tag (imagen.yaml needs no tags)"
                )
    return f"{label}: YAML error: {reason}"


# ---------------------------------------------------------------- structuring


class _Mismatch(Exception):
    def __init__(self, expected: str, value: Any) -> None:
        super().__init__(f"expected {expected}, got {_describe_value(value)}")


def _describe_value(value: Any) -> str:
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "nothing (null)"
    return repr(_plain(value))


def _plain(node: Any) -> Any:
    """ruamel's commented nodes -> plain dict/list/str/int/float/bool."""
    if isinstance(node, Mapping):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    for kind in (bool, int, float, str):
        if isinstance(node, kind):
            return kind(node)
    return node


def _strict(
    kind: Callable[[Any], Any], check: Callable[[Any], bool], name: str
) -> Callable[[Any, Any], Any]:
    def hook(value: Any, _type: Any) -> Any:
        if not check(value):
            raise _Mismatch(name, value)
        return kind(value)

    return hook


def make_converter() -> cattrs.Converter:
    """A cattrs converter that refuses unknown keys and coercions YAML did not make."""
    import cattrs  # only when there is a file to structure: it costs ~10 ms at start

    conv = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)

    def is_int(v: Any) -> bool:
        return isinstance(v, int) and not isinstance(v, bool)

    conv.register_structure_hook(int, _strict(int, is_int, "an integer"))

    def number(value: Any, _type: Any) -> float:
        if not (is_int(value) or isinstance(value, float)):
            raise _Mismatch("a number", value)
        if not abs(value) <= MAX_NUMBER:  # also NaN
            raise _Mismatch("a number between -1e9 and 1e9", value)
        return float(value)

    conv.register_structure_hook(float, number)
    conv.register_structure_hook(str, _strict(str, lambda v: isinstance(v, str), "a string"))
    conv.register_structure_hook(bool, _strict(bool, lambda v: isinstance(v, bool), "true/false"))
    conv.register_structure_hook(Path, _strict(_expand, lambda v: isinstance(v, str), "a path"))

    def literal_hook(value: Any, tp: Any) -> Any:
        choices = typing.get_args(tp)
        if value not in choices or type(value) is not type(choices[0]):
            raise _Mismatch("one of " + " | ".join(map(str, choices)), value)
        return value

    def is_literal(tp: Any) -> bool:
        return typing.get_origin(tp) is Literal

    conv.register_structure_hook_func(is_literal, literal_hook)
    return conv


_converter: cattrs.Converter | None = None


def converter() -> cattrs.Converter:
    global _converter
    if _converter is None:
        _converter = make_converter()
    return _converter


def _plugin_hint(name: str) -> str:
    """Why no plugin provides backend ``name``: disabled, not loaded, or not installed."""
    if not re.match(_NAME_LIKE_TYPE, name):
        return ""
    disabled = {p.strip() for p in os.environ.get("IMAGEN_DISABLE_PLUGINS", "").split(",")}
    if name in disabled:
        return f" (its plugin is disabled: IMAGEN_DISABLE_PLUGINS names {name!r})"
    loaded = os.environ.get("IMAGEN_LOAD_PLUGINS")
    if loaded is not None:
        return (
            f" (IMAGEN_LOAD_PLUGINS={loaded!r} loads only those plugins: add imagen-{name} "
            "if it is installed)"
        )
    return f" (if a plugin provides it, install it: pip install imagen-{name})"


def _did_you_mean(word: str, choices: Any) -> str:
    import difflib

    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


did_you_mean = _did_you_mean  # for the CLI's own hints


def _required(cls: type) -> list[str]:
    """The keys of a config class that have no default."""
    return [f.name for f in attrs.fields(cls) if f.default is attrs.NOTHING]


def _field_names(cls: type) -> list[str]:
    return [f.name for f in attrs.fields(cls)] if attrs.has(cls) else []


def _errors(exc: BaseException, path: tuple[Any, ...]) -> Iterator[tuple[tuple[Any, ...], str]]:
    """Flatten cattrs' exception tree into (key path, message)."""
    from cattrs.errors import (
        AttributeValidationNote,
        ClassValidationError,
        ForbiddenExtraKeysError,
        IterableValidationError,
        IterableValidationNote,
    )

    if isinstance(exc, ForbiddenExtraKeysError):
        for key in sorted(exc.extra_fields):
            hint = _did_you_mean(key, _field_names(exc.cl))
            yield (*path, key), f"unknown key{hint}; known keys: {', '.join(_field_names(exc.cl))}"
        return
    if isinstance(exc, (ClassValidationError, IterableValidationError)):
        for sub in exc.exceptions:
            sub_path = path
            for note in getattr(sub, "__notes__", []):
                if isinstance(note, AttributeValidationNote):
                    sub_path = (*path, note.name)
                elif isinstance(note, IterableValidationNote):
                    sub_path = (*path, note.index)
            yield from _errors(sub, sub_path)
        return
    if isinstance(exc, KeyError):
        yield path, "required key is missing"
        return
    yield path, str(exc) or type(exc).__name__


class _Problems:
    """Collects problems with their position in the YAML file."""

    def __init__(self, root: Any, path: Path | None) -> None:
        self.root = root
        self.label = str(path) if path else None
        self.lines: list[str] = []

    def where(self, keys: tuple[Any, ...], *, at_key: bool = False) -> str:
        if self.label is None:
            return ""
        node, line_col = self.root, None
        for i, key in enumerate(keys):
            lc = getattr(node, "lc", None)
            if lc is None or not isinstance(node, (Mapping, list)):
                break
            try:
                value = node[key]
                # A null value has no token of its own: ruamel points at the next
                # one, often on another line, so point at the key instead.
                use_key = (i == len(keys) - 1 and at_key) or value is None
                line_col = lc.key(key) if use_key else lc.value(key)
                node = value
            except (KeyError, IndexError, TypeError):
                break
        if line_col is None:
            return f" ({self.label})"
        return f" ({self.label}:{line_col[0] + 1}:{line_col[1] + 1})"

    def add(self, keys: tuple[Any, ...], message: str, *, at_key: bool = False) -> None:
        dotted = ".".join(map(str, keys)) or "config"
        self.lines.append(f"{dotted}: {message}{self.where(keys, at_key=at_key)}")

    def structure(self, value: Any, cls: type, keys: tuple[Any, ...]) -> Any:
        """``value`` structured into ``cls``, or None with every problem added:
        an unknown key does not hide what the known keys say, and a validator
        that fails does not hide the others (see ``_each_validator``)."""
        if not value and not _required(cls):
            return cls()  # nothing to structure: skip cattrs entirely
        from cattrs.errors import ClassValidationError, IterableValidationError

        try:
            return converter().structure(_plain(value), cls)
        except (ClassValidationError, IterableValidationError) as exc:
            errors = list(_errors(exc, keys))
        except Exception as exc:  # a plugin's own converter
            errors = [(keys, str(exc) or type(exc).__name__)]
        unknown = {
            sub_keys[-1]
            for sub_keys, message in errors
            if message.startswith("unknown key") and len(sub_keys) == len(keys) + 1
        }
        for sub_keys, message in errors:
            if sub_keys != keys:
                self.add(sub_keys, message, at_key=message.startswith("unknown key"))
        if unknown and isinstance(value, Mapping) and len(unknown) < len(value):
            # What the known keys say too: cattrs stops at the unknown ones.
            said = self.lines
            self.lines = []
            self.structure({k: v for k, v in value.items() if k not in unknown}, cls, keys)
            self.lines = said + [line for line in self.lines if line not in said]
            return None
        at_block = [message for sub_keys, message in errors if sub_keys == keys]
        if at_block and not self._each_validator(value, cls, keys):
            for message in at_block:
                self.add(keys, message)
        return None

    def _each_validator(self, value: Any, cls: type, keys: tuple[Any, ...]) -> bool:
        """Report what every field's validator says, not only the first that
        raised (a bad ``url`` must not hide a bad ``workflow``): structure into a
        copy of ``cls`` without validators, then run each one on its own. False
        when that is not possible (the caller reports the first error)."""
        try:
            shadow = _unvalidated(cls)
            instance: Any = converter().structure(_plain(value), shadow)
        except Exception:
            return False
        said = False
        for field in attrs.fields(cls):
            if field.validator is None:
                continue
            try:
                field.validator(instance, field, getattr(instance, field.name))
            except Exception as exc:
                self.add(keys, str(exc) or type(exc).__name__)
                said = True
        return said


_shadows: dict[type, type] = {}


def _unvalidated(cls: type) -> type:
    """``cls`` without its validators (the same fields, types and converters)."""
    shadow = _shadows.get(cls)
    if shadow is None:
        fields = attrs.fields(attrs.resolve_types(cls))
        shadow = attrs.make_class(
            f"{cls.__name__}Unvalidated",
            {
                f.name: attrs.field(
                    default=f.default, converter=f.converter, type=f.type, alias=f.alias
                )
                for f in fields
            },
            frozen=True,
        )
        _shadows[cls] = shadow
    return shadow


TOP_LEVEL = (
    "default_backend",
    "output",
    "styles",
    "backends",
    "sinks",
    "queue",
    "mcp",
    "budgets",
)


def from_mapping(
    data: Any, registry: Registry, *, path: Path | None = None, strict: bool = False
) -> Config:
    """Structure a parsed config (a mapping, e.g. from YAML) into a Config.

    Instances of uninstalled types are kept with their problem, to fail when used;
    ``strict`` (``imagen config validate``) reports them with everything else."""
    problems = _Problems(data, path)
    if not isinstance(data, Mapping):
        problems.add((), f"the file must be a mapping of keys, got {_describe_value(data)}")
        raise ConfigError(problems.lines)
    _bounded(data, problems)  # before anything copies the tree
    _no_nul(data, problems)
    for key in data:
        if key not in TOP_LEVEL:
            hint = _did_you_mean(key, TOP_LEVEL)
            problems.add(
                (key,), f"unknown key{hint}; known keys: {', '.join(TOP_LEVEL)}", at_key=True
            )

    # The built-in default ("mock") is checked when used, not here: a machine
    # without imagen-mock can still run `--backend other` with no config file.
    default_backend = data.get("default_backend", "mock")
    if not isinstance(default_backend, str) or not default_backend:
        problems.add(
            ("default_backend",), f"expected a backend name, got {_describe_value(default_backend)}"
        )
    raw_output = data.get("output") or {}
    output = problems.structure(raw_output, OutputConfig, ("output",))
    naming = raw_output.get("naming") if isinstance(raw_output, Mapping) else None
    if isinstance(naming, str):
        from imagen_core.naming import template_problem

        bad = template_problem(naming)
        if bad:
            problems.add(("output", "naming"), bad)

    mcp = problems.structure(data.get("mcp") or {}, McpConfig, ("mcp",))
    if mcp is not None and mcp.confirm_above_usd is not None and mcp.confirm_above_usd < 0:
        problems.add(("mcp", "confirm_above_usd"), "must be 0 or more (USD)")
    budgets = _budgets(data.get("budgets") or [], problems)
    styles = _styles(data.get("styles") or {}, problems)
    backends = _instances("backend", data.get("backends") or {}, registry, problems)
    sinks = _instances("sink", data.get("sinks") or {}, registry, problems)
    queue = None
    if "queue" in data:
        queue = _instance(
            "queue", ("queue",), "queue", data["queue"], registry, problems, default_type="sqlite"
        )

    # A block with problems of its own still counts as configured here.
    named = set(data.get("backends") or {}) if isinstance(data.get("backends"), Mapping) else set()
    if (
        "default_backend" in data
        and isinstance(default_backend, str)
        and default_backend
        and default_backend not in named
        and default_backend not in registry.backends
    ):
        known = sorted(named | set(registry.backends))
        problems.add(
            ("default_backend",),
            f"names no configured backend{_did_you_mean(default_backend, known)}; "
            f"configured are {', '.join(known) or 'none'}",
        )
    if strict:
        blocks = (*backends.values(), *sinks.values(), *([queue] if queue else []))
        problems.lines += [i.problem for i in blocks if i.problem]
        for section, instances in (("backends", backends), ("sinks", sinks)):
            for name, instance in instances.items():
                _deeper_checks(instance, (section, name), problems)
        if queue is not None:
            _deeper_checks(queue, ("queue",), problems)
    if problems.lines:
        raise ConfigError(problems.lines)
    return Config(
        path=path,
        default_backend=default_backend,
        output=output,
        styles=styles,
        backends=backends,
        sinks=sinks,
        queue_block=queue,
        mcp=mcp,
        budgets=budgets,
    )


def _budgets(node: Any, problems: _Problems) -> tuple[Budget, ...]:
    if not isinstance(node, list):
        got = _describe_value(node)
        problems.add(("budgets",), f"expected a list of {{period, limit_usd}} blocks, got {got}")
        return ()
    found = []
    for index, block in enumerate(node):
        if not isinstance(block, Mapping):
            got = _describe_value(block)
            problems.add(("budgets", index), f"expected a {{period, limit_usd}} block, got {got}")
            continue
        if "limit_usd" not in block:
            problems.add(("budgets", index), "limit_usd is missing: the most to spend per period")
            continue
        from imagen_core.budgets import Budget

        budget = problems.structure(block, Budget, ("budgets", index))
        if budget is not None:
            found.append(budget)
    return tuple(found)


def _deeper_checks(instance: Instance, keys: tuple[str, ...], problems: _Problems) -> None:
    """What a config class's ``problems()`` finds (files it names, their
    contents): the checks too slow or too strict for every command, run by
    ``imagen config validate``. Each problem is reported at the block."""
    check = getattr(instance.settings, "problems", None)
    if not callable(check):
        return
    try:
        found = [str(problem) for problem in check()]
    except Exception as exc:  # a plugin's bug: still a problem to show, not a crash
        from imagen_core.errors import describe

        found = [f"could not be checked: {describe(exc)}"]
    for problem in found:
        problems.add(keys, problem)


def _children(node: Any) -> list[tuple[Any, Any]]:
    if isinstance(node, Mapping):
        return list(node.items())
    if isinstance(node, list):
        return list(enumerate(node))
    return []


def _bounded(data: Any, problems: _Problems) -> None:
    """Refuse a tree whose aliases expand to more than MAX_VALUES values (or that
    contains itself), naming the anchor's place. Each shared node is sized
    once, so this costs the size of the file, not of its expansion."""
    sizes: dict[int, int] = {}
    stack: list[tuple[Any, bool]] = [(data, False)]
    while stack:
        node, finished = stack.pop()
        if not isinstance(node, (Mapping, list)):
            continue
        if finished:
            total = 1
            for _key, child in _children(node):
                if isinstance(child, (Mapping, list)):
                    total += sizes[id(child)]
                else:
                    total += 1
            sizes[id(node)] = min(total, MAX_VALUES + 1)
            continue
        if id(node) in sizes:
            if sizes[id(node)] < 0:  # reached again while being sized: a cycle
                sizes[id(node)] = MAX_VALUES + 1
            continue
        sizes[id(node)] = -1
        stack.append((node, True))
        stack += [(child, False) for _key, child in _children(node)]
    if sizes.get(id(data), 0) <= MAX_VALUES:
        return
    keys: tuple[Any, ...] = ()
    node = data
    while True:  # down to the smallest block that is still too big
        bigger = [
            (key, child)
            for key, child in _children(node)
            if isinstance(child, (Mapping, list)) and sizes.get(id(child), 0) > MAX_VALUES
        ]
        if not bigger:
            break
        key, node = bigger[0]
        keys = (*keys, key)
    problems.add(
        keys,
        f"its aliases expand to more than {MAX_VALUES:,} values (or it contains itself); "
        "write the values out instead of nesting anchors",
    )
    raise ConfigError(problems.lines)


def _no_nul(data: Any, problems: _Problems) -> None:
    """A NUL character passes YAML (``"\\0"``) but no path or URL can hold one."""
    stack: list[tuple[tuple[Any, ...], Any]] = [((), data)]
    while stack:
        keys, node = stack.pop()
        for key, child in _children(node):
            if isinstance(key, str) and "\0" in key:
                problems.add((*keys, key), "the key holds a NUL character; remove it", at_key=True)
            if isinstance(child, str) and "\0" in child:
                problems.add(
                    (*keys, key),
                    f"holds a NUL character at {child.index(chr(0)) + 1}; remove it",
                )
            elif isinstance(child, (Mapping, list)):
                stack.append(((*keys, key), child))


def _styles(node: Any, problems: _Problems) -> dict[str, str]:
    if not isinstance(node, Mapping):
        got = _describe_value(node)
        problems.add(("styles",), f"expected a mapping of name: template, got {got}")
        return {}
    styles = {}
    for name, template in node.items():
        if not isinstance(template, str):
            got = _describe_value(template)
            problems.add(("styles", name), f"expected a template string, got {got}")
        elif "{prompt}" not in template:
            problems.add(("styles", name), "the template must contain {prompt}")
        else:
            styles[str(name)] = str(template)
    return styles


def _instances(
    kind: str, node: Any, registry: Registry, problems: _Problems
) -> dict[str, Instance]:
    section = f"{kind}s"
    if not isinstance(node, Mapping):
        problems.add((section,), f"expected a mapping of name: block, got {_describe_value(node)}")
        return {}
    instances: dict[str, Instance] = {}
    for name, block in node.items():
        instance = _instance(kind, (section, str(name)), str(name), block, registry, problems)
        if instance is not None:
            instances[str(name)] = instance
    return instances


def _instance(
    kind: str,
    keys: tuple[str, ...],
    name: str,
    block: Any,
    registry: Registry,
    problems: _Problems,
    *,
    default_type: str | None = None,
) -> Instance | None:
    """One block: its ``type`` (default: the name), core keys, and the plugin's keys."""
    types = registry.of_kind(kind)
    where = problems.where(keys, at_key=True).strip(" ()")
    if block is False and kind == "sink":
        problem = None
        if name not in types:  # turning off what does not exist: a typo?
            known = ", ".join(sorted(types)) or "none"
            problem = (
                f"{'.'.join(keys)}: no sink named {name!r}{_did_you_mean(name, types)} "
                f"({where}); sinks are: {known}"
            )
        return Instance(name, name, None, where, problem, enabled=False)
    if block is None:
        block = {}
    if not isinstance(block, Mapping):
        got = _describe_value(block)
        problems.add(keys, f"expected a mapping with a `type:` key, got {got}")
        return None
    type_name = block.get("type", default_type or name)
    if not isinstance(type_name, str):
        got = _describe_value(type_name)
        problems.add((*keys, "type"), f"expected a {kind} type name, got {got}")
        return None
    reg: Registration | None = types.get(type_name)
    dotted = ".".join(keys)
    if reg is None:
        known = ", ".join(sorted(types)) or "none"
        hint = _did_you_mean(type_name, types)
        problem = (
            f"{dotted}: unknown {kind} type {type_name!r}{hint} ({where}); "
            f"installed types: {known}; if a plugin provides it, install it "
            f"(pip install imagen-{type_name})"
        )
        return Instance(name, type_name, None, where, problem)
    device = block.get("device") if kind == "backend" else None
    if device is not None and not isinstance(device, str):
        got = _describe_value(device)
        problems.add((*keys, "device"), f"expected a device label, got {got}")
    in_flight = block.get("max_in_flight") if kind == "backend" else None
    if in_flight is not None and (
        isinstance(in_flight, bool) or not isinstance(in_flight, int) or in_flight < 1
    ):
        got = _describe_value(in_flight)
        problems.add((*keys, "max_in_flight"), f"expected a whole number of 1 or more, got {got}")
        in_flight = None
    rate = block.get("usd_per_second") if kind == "backend" else None
    if rate is not None and (
        isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate < float("inf")
    ):
        got = _describe_value(rate)
        problems.add((*keys, "usd_per_second"), f"expected a price of 0 or more USD, got {got}")
        rate = None
    settings = {k: v for k, v in block.items() if k not in CORE_KEYS[kind]}
    structured = problems.structure(settings, reg.config, keys)
    if structured is None:
        return None
    return Instance(
        name,
        type_name,
        structured,
        where,
        device=device,
        max_in_flight=in_flight,
        usd_per_second=None if rate is None else float(rate),
    )


# Keys every block may have, handled by the core and not passed to the plugin.
CORE_KEYS = {
    "backend": ("type", "device", "max_in_flight", "usd_per_second"),
    "sink": ("type",),
    "queue": ("type",),
}


def require_env(variable: str, *, key: str = "api_token_env") -> str:
    """The value of a secret's environment variable.

    ``key`` is the block key that named the variable. When it is unset this raises
    MissingEnvError, and the core completes the message with the instance:
    ``set REPLICATE_API_TOKEN in the environment (named by backends.flux.api_token_env)``.
    Call it when the backend is built or used, never at config load."""
    value = os.environ.get(variable, "")
    if not value:
        raise MissingEnvError(variable, key)
    return value


# Budget lives with the budgets (imagen_core.budgets): built on first use.
__getattr__ = lazy(__name__, {"Budget": "imagen_core.budgets"})
