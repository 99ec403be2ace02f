"""One validation layer for everything a user hands to arena: CLI options, ``--set`` values, sweep specs,
succinctness options, environment variables and the files they name.

Every check here raises :class:`arena.errors.ArenaError` (exit 2) with the offending field, option or file
named, and runs before a run row is written. The rules:

* numbers are finite (NaN and infinities are refused) and inside their documented range;
* types are strict: a boolean is never an integer or a float (``train.batch_size=true`` is refused);
* run ids fit the database's 64-bit integer;
* YAML is read with one safe loader that refuses aliases/anchors (no "billion laughs") and duplicate keys;
* text files must be UTF-8 text (no NUL bytes) and non-empty; output paths must be usable before work starts;
* grids of runs are capped (``--max-runs`` or ``$ARENA_MAX_RUNS`` raise the cap);
* a model whose estimated training memory exceeds the available RAM is refused before it is built.
"""

from __future__ import annotations

import math
import os
import types
import typing
from pathlib import Path
from typing import Any

import yaml

from arena.errors import ArenaError

MAX_RUN_ID = 2**63 - 1  # SQLite INTEGER / PostgreSQL BIGINT
DEFAULT_MAX_RUNS = 5_000  # runs one sweep or succinctness grid may expand to, unless raised
MAX_YAML_BYTES = 1_000_000  # a sweep spec is a few hundred bytes; 1 MB is far beyond any real one
MAX_DEPTHS = 64  # distinct depths in one succinctness invocation
MAX_DEPTH = 100_000
MAX_WIDTH = 65_536  # RunSpec.d_model's upper bound
TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"", "0", "false", "no", "off"}


# ----------------------------------------------------------------------------------------------- numbers


def check_number(name: str, value: Any, *, lo: float | None = None, hi: float | None = None,
                 lo_open: bool = False, hi_open: bool = False, integer: bool = False) -> Any:
    """``value`` as a finite int/float inside [lo, hi] (open ends with ``lo_open``/``hi_open``); booleans and
    non-numbers are refused. Returns the value unchanged."""
    kind = "an integer" if integer else "a number"
    if isinstance(value, bool) or not isinstance(value, int | float) or (integer and not isinstance(value, int)):
        raise ArenaError(f"{name} must be {kind}, got {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ArenaError(f"{name} must be a finite number, got {value!r}")
    if lo is not None and (value < lo or (lo_open and value == lo)):
        raise ArenaError(f"{name} must be {'>' if lo_open else '>='} {lo:g}, got {value!r}")
    if hi is not None and (value > hi or (hi_open and value == hi)):
        raise ArenaError(f"{name} must be {'<' if hi_open else '<='} {hi:g}, got {value!r}")
    return value


def check_run_id(value: Any, name: str = "run id") -> int:
    return check_number(name, value, lo=1, hi=MAX_RUN_ID, integer=True)


def bool_for_number(annotation: Any, value: Any) -> bool:
    """True when ``value`` holds a boolean where ``annotation`` wants an int or float (and not a bool): pydantic's
    lax mode would turn ``True`` into ``1``. Looks inside Optional/Union, lists, tuples, sets and dict values."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return bool_for_number(typing.get_args(annotation)[0], value)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(annotation) if a is not type(None)]
        if isinstance(value, bool):
            return bool(options) and not any(_accepts_bool(a) for a in options) and any(_numeric(a) for a in options)
        return len(options) == 1 and bool_for_number(options[0], value)
    if isinstance(value, bool):
        return _numeric(annotation) and not _accepts_bool(annotation)
    if origin in (list, set, frozenset, tuple) and isinstance(value, list | tuple | set | frozenset):
        args = [a for a in typing.get_args(annotation) if a is not Ellipsis]
        if not args:
            return False
        if origin is tuple and len(args) == len(value) and typing.get_args(annotation)[-1] is not Ellipsis:
            return any(bool_for_number(a, v) for a, v in zip(args, value, strict=True))
        return any(bool_for_number(args[0], v) for v in value)
    if origin is dict and isinstance(value, dict):
        args = typing.get_args(annotation)
        return len(args) == 2 and any(bool_for_number(args[1], v) for v in value.values())
    return False


def _numeric(annotation: Any) -> bool:
    return annotation in (int, float)


def _accepts_bool(annotation: Any) -> bool:
    return annotation is bool or annotation is Any or typing.get_origin(annotation) is typing.Literal


# ----------------------------------------------------------------------------------------------- environment


def env_flag(name: str, default: bool = False) -> bool:
    """A boolean environment variable: 1/true/yes/on or 0/false/no/off (any case); anything else is refused."""
    raw = os.environ.get(name)
    if raw is None:
        return default
    word = raw.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ArenaError(f"environment variable {name} must be one of 1/true/yes/on or 0/false/no/off, got {raw!r}")


def env_int(name: str, default: int, *, lo: int, hi: int) -> int:
    """An integer environment variable inside [lo, hi]; unset or empty gives ``default``."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw.replace("_", ""))
    except ValueError:
        raise ArenaError(f"environment variable {name} must be an integer, got {raw!r}") from None
    return check_number(f"environment variable {name}", value, lo=lo, hi=hi, integer=True)


def env_dir(name: str, default: str) -> Path:
    """A folder named by an environment variable: it may be missing (created later) but not be a file."""
    raw = os.environ.get(name) or default
    if "\x00" in raw:
        raise ArenaError(f"environment variable {name} holds a NUL byte")
    path = Path(raw)
    if path.exists() and not path.is_dir():
        raise ArenaError(f"environment variable {name} names {path}, which is not a folder")
    return path


# ----------------------------------------------------------------------------------------------- YAML


class _SafeLoader(yaml.SafeLoader):
    """yaml.SafeLoader without aliases/anchors and with duplicate keys refused."""


def _no_alias(self: _SafeLoader, *args: Any, **kwargs: Any) -> Any:
    event = self.peek_event()
    if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
        mark = event.start_mark
        raise yaml.constructor.ConstructorError(None, None, "anchors and aliases (&x / *x) are not allowed", mark)
    return _compose_node(self, *args, **kwargs)


_compose_node = yaml.composer.Composer.compose_node
_SafeLoader.compose_node = _no_alias  # type: ignore[method-assign]


def _mapping(loader: _SafeLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    out: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=deep)
        try:
            hash(key)
        except TypeError:
            raise yaml.constructor.ConstructorError(None, None, f"unhashable key {key!r}", key_node.start_mark) from None
        if key in out:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        out[key] = loader.construct_object(value_node, deep=deep)
    return out


_SafeLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def load_yaml(text: str, where: str) -> Any:
    """Parse YAML safely; an error names ``where`` (a file or an option) and the line."""
    if len(text) > MAX_YAML_BYTES:
        raise ArenaError(f"{where} is {len(text):,} characters; YAML input is limited to {MAX_YAML_BYTES:,}")
    try:
        return yaml.load(text, Loader=_SafeLoader)  # noqa: S506 - _SafeLoader is a SafeLoader
    except yaml.YAMLError as exc:
        detail = " ".join(str(exc).replace('in "<unicode string>", ', "").split())
        raise ArenaError(f"{where} is not valid YAML: {detail}") from None
    except RecursionError:
        raise ArenaError(f"{where}: YAML nested too deeply") from None


def parse_scalar(text: str, where: str) -> Any:
    """A ``--set`` value: YAML (numbers, booleans, lists, mappings); text that is not valid YAML stays text, but
    aliases and duplicate keys are refused."""
    try:
        return yaml.load(text, Loader=_SafeLoader)  # noqa: S506
    except yaml.constructor.ConstructorError as exc:
        raise ArenaError(f"{where}: {exc.problem}") from None
    except yaml.YAMLError:
        return text
    except RecursionError:
        raise ArenaError(f"{where}: value nested too deeply") from None


# ----------------------------------------------------------------------------------------------- files


def read_text_file(path: str | Path, what: str) -> str:
    """A UTF-8 text file's contents; missing, unreadable, binary (NUL bytes or invalid UTF-8) or empty files are
    ArenaErrors naming the file."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except IsADirectoryError:
        raise ArenaError(f"{what} {p} is a folder, not a file") from None
    except OSError as exc:
        raise ArenaError(f"cannot read {what} {p}: {exc.strerror or exc}") from None
    if b"\x00" in data:
        raise ArenaError(f"{what} {p} is a binary file, not UTF-8 text")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ArenaError(f"{what} {p} is not UTF-8 text (invalid byte at offset {exc.start})") from None
    if not text.strip():
        raise ArenaError(f"{what} {p} is empty")
    return text


def check_out_dir(path: str | Path, option: str = "--out") -> Path:
    """An output folder: created if missing; an existing file or an unwritable place is refused up front."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise ArenaError(f"{option} {p} is an existing file, not a folder")
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ArenaError(f"{option} {p}: cannot create the folder: {exc.strerror or exc}") from None
    if not os.access(p, os.W_OK | os.X_OK):
        raise ArenaError(f"{option} {p}: the folder is not writable")
    return p


def check_out_file(path: str | Path, option: str = "--out") -> Path:
    """An output file: an existing folder, a parent that is a file, or an unwritable folder is refused up front
    (an existing file is overwritten, as before)."""
    p = Path(path)
    if p.is_dir():
        raise ArenaError(f"{option} {p} is an existing folder; give a file name")
    parent = p.parent
    for q in (parent, *parent.parents):
        if q.exists():
            if not q.is_dir():
                raise ArenaError(f"{option} {p}: {q} is a file, not a folder")
            if not os.access(q, os.W_OK | os.X_OK):
                raise ArenaError(f"{option} {p}: the folder {q} is not writable")
            break
    if p.exists() and not os.access(p, os.W_OK):
        raise ArenaError(f"{option} {p}: the file is not writable")
    return p


# ----------------------------------------------------------------------------------------------- work limits


def max_runs(cap: int | None = None) -> int:
    """The grid cap: ``cap`` (a --max-runs option) or $ARENA_MAX_RUNS or the default."""
    if cap is not None:
        return check_number("--max-runs", cap, lo=1, hi=10**9, integer=True)
    return env_int("ARENA_MAX_RUNS", DEFAULT_MAX_RUNS, lo=1, hi=10**9)


def check_grid(n: int, what: str, cap: int | None = None) -> None:
    limit = max_runs(cap)
    if n > limit:
        raise ArenaError(f"{what} expands to {n:,} runs, more than the limit of {limit:,}; shrink the grid or raise "
                         f"the limit with --max-runs N (or $ARENA_MAX_RUNS)")


# ----------------------------------------------------------------------------------------------- memory

BYTES_PER_PARAM = 4  # float32
OPTIMISER_FACTOR = 4  # weights + gradients + AdamW's two moments
ACTIVATION_FACTOR = 34  # float32 activations kept per layer, per token, per model width (Korthikanti et al. 2022)


def available_memory() -> int | None:
    """Bytes of RAM available to a new allocation (None when unknown)."""
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except Exception:  # noqa: BLE001 - psutil missing or unsupported platform
        pass
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def estimate_training_memory(params: int, *, batch: int, seq_len: int, d_model: int, n_layers: int,
                             vocab: int, heads: int = 0) -> dict[str, int]:
    """Bytes needed to train: params x 4 bytes x optimiser factor, plus activations (per layer, the attention
    matrices when there are heads, and the logits)."""
    tokens = batch * seq_len
    weights = params * BYTES_PER_PARAM * OPTIMISER_FACTOR
    acts = tokens * d_model * max(1, n_layers) * ACTIVATION_FACTOR * BYTES_PER_PARAM
    acts += batch * heads * seq_len * seq_len * max(1, n_layers) * 3 * BYTES_PER_PARAM
    acts += tokens * vocab * 3 * BYTES_PER_PARAM
    return {"weights": weights, "activations": acts, "total": weights + acts}


def check_memory(res: Any) -> dict[str, int] | None:
    """Refuse a resolved run (:class:`arena.spec.Resolved`) whose estimated training memory exceeds the available
    RAM, before the model is built. ``ARENA_SKIP_MEMORY_CHECK=1`` turns the check off."""
    if env_flag("ARENA_SKIP_MEMORY_CHECK"):
        return None
    from arena.blocks import analytic_params

    try:
        params = analytic_params(res.arch, res.shape, res.arch_cfg)["total"]
    except Exception:  # noqa: BLE001 - a plugin's declared count failing is reported where it always was
        return None
    shape = res.shape
    # T x T attention scores only for mixers that declare attention heads (ArchSpec.heads); their config's n_heads
    heads = int(res.arch_cfg.n_heads) if res.arch.heads is not None else 0
    est = estimate_training_memory(int(params), batch=res.spec.train.batch_size, seq_len=shape.max_seq_len,
                                   d_model=shape.d_model, n_layers=shape.n_layers, vocab=shape.vocab_size, heads=heads)
    avail = available_memory()
    if avail is not None and est["total"] > avail:
        gib = 1024**3
        raise ArenaError(
            f"this run needs about {est['total'] / gib:,.1f} GiB to train ({int(params):,} parameters x "
            f"{BYTES_PER_PARAM} bytes x {OPTIMISER_FACTOR} for the optimiser = {est['weights'] / gib:,.1f} GiB, plus "
            f"{est['activations'] / gib:,.1f} GiB of activations at train.batch_size={res.spec.train.batch_size}, "
            f"seq_len {shape.max_seq_len}) but only {avail / gib:,.1f} GiB is available; lower d_model, n_layers, "
            f"params or train.batch_size (or set ARENA_SKIP_MEMORY_CHECK=1)")
    return est


# ----------------------------------------------------------------------------------------------- CLI callbacks


def finite_option(lo: float | None = None, hi: float | None = None, *, lo_open: bool = False,
                  hi_open: bool = False) -> Any:
    """A Typer/click callback for a float option: finite and inside [lo, hi]; a bad value is a usage error (exit 2)
    naming the option."""

    def callback(value: float | None) -> float | None:
        import typer

        if value is None:
            return value
        try:
            check_number("value", value, lo=lo, hi=hi, lo_open=lo_open, hi_open=hi_open)
        except ArenaError as exc:
            raise typer.BadParameter(str(exc).removeprefix("value ")) from None
        return value

    return callback
