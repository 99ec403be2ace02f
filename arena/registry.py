"""A generic registry with lazy ``module:attr`` entries, entry-point discovery and "did you mean".

Built-ins are listed in static name -> ``module:attr`` maps (entry-point metadata would need a reinstall after
every change, even editable); plugins come through the ``arena.architectures`` / ``arena.tasks`` entry-point
groups. Both become the same lazy entries, so a built-in is loaded, validated and tested exactly like a plugin.

Environment: ``ARENA_NO_PLUGINS=1`` disables entry-point plugins; ``ARENA_PLUGINS=a,b`` keeps only those names.
"""

from __future__ import annotations

import importlib
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, Generic, TypeVar

from arena.api import ArchSpec, Task, TaskSpec
from arena.errors import ArenaError, RegistryCollisionError, UnknownNameError, suggest

T = TypeVar("T")


@dataclass(frozen=True)
class Lazy:
    """A placeholder resolved on first use: ``target`` is ``"module:attr"``."""

    target: str
    source: str = "builtin"
    dist: str | None = None
    dist_version: str | None = None

    def load(self) -> Any:
        module, _, attr = self.target.partition(":")
        obj: Any = importlib.import_module(module)
        for part in attr.split(".") if attr else []:
            obj = getattr(obj, part)
        return obj


class Registry(Generic[T]):
    """Name -> object map. Entries may be lazy; unknown names raise with suggestions."""

    def __init__(self, kind: str, group: str | None = None, coerce: Callable[[str, Any, Lazy | None], T] | None = None):
        self.kind = kind
        self.group = group
        self._coerce = coerce or (lambda name, obj, lazy: obj)
        self._entries: dict[str, T | Lazy] = {}
        self._plugins_loaded = group is None
        self._lock = threading.RLock()

    def register(self, name: str, obj: T | None = None, *, lazy: str | None = None, source: str = "builtin",
                 dist: str | None = None, dist_version: str | None = None, replace: bool = False) -> T | Lazy:
        """Add an entry (an object, or a lazy ``module:attr``). A second entry under one name is an error."""
        if (obj is None) == (lazy is None):
            raise ValueError("give exactly one of obj or lazy")
        entry: T | Lazy = obj if obj is not None else Lazy(lazy, source, dist, dist_version)  # type: ignore[arg-type]
        with self._lock:
            old = self._entries.get(name)
            if old is not None and not replace and old is not entry and old != entry:
                raise RegistryCollisionError(
                    f"{self.kind} name {name!r} is already registered ({_describe(old)}); "
                    f"refusing to overwrite it with {_describe(entry)}")
            self._entries[name] = entry
        return entry

    def unregister(self, name: str) -> None:
        with self._lock:
            self._entries.pop(name, None)

    def _ensure_plugins(self) -> None:
        if self._plugins_loaded:
            return
        with self._lock:
            if self._plugins_loaded:
                return
            self._plugins_loaded = True
            if os.environ.get("ARENA_NO_PLUGINS", "").strip() in {"1", "true", "yes"}:
                return
            allowed = {p.strip() for p in os.environ.get("ARENA_PLUGINS", "").split(",") if p.strip()}
            for ep in entry_points(group=self.group):
                if allowed and ep.name not in allowed:
                    continue
                dist = getattr(ep, "dist", None)
                self.register(ep.name, lazy=ep.value, source="plugin",
                              dist=dist.name if dist else None, dist_version=dist.version if dist else None)

    def names(self) -> list[str]:
        self._ensure_plugins()
        return sorted(self._entries)

    def entry(self, name: str) -> T | Lazy:
        """The raw entry (possibly still lazy), without importing anything."""
        self._ensure_plugins()
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownNameError(f"unknown {self.kind} {name!r}{suggest(name, self._entries)}") from None

    def get(self, name: str) -> T:
        entry = self.entry(name)
        if not isinstance(entry, Lazy):
            return entry
        try:
            obj = entry.load()
        except ArenaError:
            raise
        except Exception as exc:  # a plugin that fails to import must say which one
            raise ArenaError(f"{self.kind} {name!r} failed to load from {entry.target}: "
                             f"{type(exc).__name__}: {exc}") from exc
        value = self._coerce(name, obj, entry)
        with self._lock:
            self._entries[name] = value
        return value

    def __contains__(self, name: str) -> bool:
        self._ensure_plugins()
        return name in self._entries

    def _clear(self) -> None:
        """Testing helper: forget every entry."""
        with self._lock:
            self._entries.clear()


def _describe(entry: Any) -> str:
    if isinstance(entry, Lazy):
        return f"{entry.source} {entry.target}"
    return f"{getattr(entry, 'source', 'object')} {getattr(entry, 'name', entry)!r}"


def _coerce_arch(name: str, obj: Any, lazy: Lazy | None) -> ArchSpec:
    spec = getattr(obj, "spec", obj)
    if not isinstance(spec, ArchSpec):
        raise ArenaError(f"architecture entry {name!r} points to {type(obj).__name__}, not an ArchSpec "
                         "(decorate the factory with arena.arch_spec)")
    if spec.name != name:
        raise ArenaError(f"architecture entry {name!r} loads a spec named {spec.name!r}; names must match")
    if lazy is not None and lazy.source != spec.source:
        from dataclasses import replace

        spec = replace(spec, source=lazy.source)
    return spec


def _coerce_task(name: str, obj: Any, lazy: Lazy | None) -> TaskSpec:
    if isinstance(obj, TaskSpec):
        spec = obj
    elif isinstance(obj, type) and issubclass(obj, Task):
        spec = TaskSpec(name=name, cls=obj, config=obj.config_cls, family=obj.family, version=obj.version,
                        description=obj.description, source=lazy.source if lazy else "builtin")
    else:
        raise ArenaError(f"task entry {name!r} points to {type(obj).__name__}, not a Task subclass or TaskSpec")
    return spec


ARCHS: Registry[ArchSpec] = Registry("architecture", group="arena.architectures", coerce=_coerce_arch)
TASKS: Registry[TaskSpec] = Registry("task", group="arena.tasks", coerce=_coerce_task)

# the built-ins: one line each. A test checks every file in architectures/ and tasks/ appears here.
BUILTIN_ARCHS: dict[str, str] = {
    "rnn": "arena.architectures.rnn:SPEC",
    "state-machine": "arena.architectures.state_machine:SPEC",
    "mamba": "arena.architectures.mamba:SPEC",
    "hyena": "arena.architectures.hyena:SPEC",
    "rnn-lm": "arena.architectures.rnn_lm:SPEC",
    "transformer": "arena.architectures.transformer:SPEC",
    "compressive": "arena.architectures.compressive:SPEC",
    "moe": "arena.architectures.moe:SPEC",
}
BUILTIN_TASKS: dict[str, str] = {
    "scan": "arena.tasks.scan:ScanTask",
    "scan-depth": "arena.tasks.scan_depth:ScanDepthTask",
    "scan-shift": "arena.tasks.scan_shift:ScanShiftTask",
    "counter-chain": "arena.tasks.counter_chain:CounterChainTask",
    "nested-parity": "arena.tasks.nested_parity:NestedParityTask",
    "lm": "arena.tasks.lm:LMTask",
    "listops": "arena.tasks.listops:ListOpsTask",
    "listops-mini": "arena.tasks.listops:ListOpsMiniTask",
    "mqar": "arena.tasks.mqar:MQARTask",
    "mqar-fig2": "arena.tasks.mqar:MQARFig2Task",
    "recall-depth": "arena.tasks.recall_depth:RecallDepthTask",
    "parity_check": "arena.tasks.chomsky:ParityCheckTask",
    "even_pairs": "arena.tasks.chomsky:EvenPairsTask",
    "modular_arithmetic": "arena.tasks.chomsky:ModularArithmeticTask",
    "cycle_navigation": "arena.tasks.chomsky:CycleNavigationTask",
    "reverse_string": "arena.tasks.chomsky:ReverseStringTask",
    "stack_manipulation": "arena.tasks.chomsky:StackManipulationTask",
    "duplicate_string": "arena.tasks.chomsky:DuplicateStringTask",
    "odds_first": "arena.tasks.chomsky:OddsFirstTask",
    "binary_addition": "arena.tasks.chomsky:BinaryAdditionTask",
    "bucket_sort": "arena.tasks.chomsky:BucketSortTask",
    "modular_arithmetic_brackets": "arena.tasks.chomsky:ModularArithmeticBracketsTask",
    "solve_equation": "arena.tasks.chomsky:SolveEquationTask",
    "missing_duplicate_string": "arena.tasks.chomsky:MissingDuplicateStringTask",
    "binary_multiplication": "arena.tasks.chomsky:BinaryMultiplicationTask",
    "compute_sqrt": "arena.tasks.chomsky:ComputeSqrtTask",
}

for _name, _target in BUILTIN_ARCHS.items():
    ARCHS.register(_name, lazy=_target)
for _name, _target in BUILTIN_TASKS.items():
    TASKS.register(_name, lazy=_target)


def get_arch(name: str) -> ArchSpec:
    return ARCHS.get(name)


def get_task(name: str) -> TaskSpec:
    return TASKS.get(name)


def register_arch(spec: ArchSpec) -> ArchSpec:
    """Register a spec eagerly (notebooks, tests). Packages should use the entry point instead."""
    ARCHS.register(spec.name, spec)
    return spec


def register_task(cls: type[Task]) -> type[Task]:
    """Class decorator registering a task eagerly under ``cls.name``."""
    TASKS.register(cls.name, _coerce_task(cls.name, cls, None))
    return cls
