"""Resolving what is submitted, on the parent side: files and package metadata only, never an import.

``PATH`` is a single ``.py`` file defining a module-level :class:`~arena.api.ArchSpec`; ``PACKAGE`` is an
installed distribution exposing the ``arena.architectures`` entry point (named by its architecture name or its
distribution name). The source is hashed (SHA-256 of the file, or of every file of the plugin's top-level
package); the hash is part of every recorded run's identity.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from arena.errors import ArenaError, suggest

GROUP = "arena.architectures"
NAME_RE = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")


class SubmitInputError(ArenaError):
    """Bad input to ``arena submit`` (exit code 2): nothing was run."""


@dataclass
class PluginSource:
    """What the parent knows about a plugin without running any of its code."""

    kind: Literal["file", "package"]
    name: str  # the distribution name, or the file name
    version: str | None  # the distribution version; for a file, filled in by the child from the spec
    sha256: str
    files: int  # how many files were hashed
    path: str  # the file, or the folder of the package's sources
    arch: str | None = None  # known up front for packages; for files, found by the child (or --name)
    entry_point: str | None = None  # "module:attr" for packages

    def label(self) -> str:
        return f"{self.name} {self.version}" if self.version else self.name


# -- resolving the target (parent side: metadata and bytes only, never an import) ----------------------------------
def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def sha256_tree(paths: list[Path], root: Path) -> str:
    """Hash of a set of files: SHA-256 over (relative path, file SHA-256) pairs in sorted order."""
    h = hashlib.sha256()
    for p in sorted(paths, key=lambda p: p.relative_to(root).as_posix()):
        h.update(p.relative_to(root).as_posix().encode() + b"\0" + sha256_file(p).encode() + b"\n")
    return h.hexdigest()


def _source_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts
            and p.suffix not in (".pyc", ".pyo")]


def resolve_plugin(target: str, name: str | None = None) -> PluginSource:
    """Turn ``PATH|PACKAGE`` into a :class:`PluginSource`; raises :class:`SubmitInputError` for bad input."""
    p = Path(target)
    if target.endswith(".py") or os.sep in target or p.exists():
        if not p.is_file():
            raise SubmitInputError(f"no such plugin file: {target}")
        if p.suffix != ".py":
            raise SubmitInputError(f"a single-file plugin must be a .py file, got {target}")
        p = p.resolve()
        return PluginSource(kind="file", name=p.name, version=None, sha256=sha256_file(p), files=1, path=str(p),
                            arch=name)
    return _resolve_package(target, name)


def _resolve_package(target: str, name: str | None) -> PluginSource:
    import importlib.util
    from importlib.metadata import entry_points

    eps = list(entry_points(group=GROUP))
    by_name = [ep for ep in eps if ep.name == target]
    by_dist = [ep for ep in eps if getattr(ep, "dist", None) and _norm(ep.dist.name) == _norm(target)]
    matches = by_name or by_dist
    if name:
        matches = [ep for ep in matches if ep.name == name]
    if not matches:
        from arena.registry import BUILTIN_ARCHS

        if target in BUILTIN_ARCHS:
            raise SubmitInputError(f"{target!r} is a built-in architecture, not a plugin; submit a plugin file "
                                   "(arena submit path/to/my_arch.py) or an installed plugin package")
        if (by_name or by_dist) and name:
            raise SubmitInputError(f"{target!r} has no architecture named {name!r}; it exposes "
                                   + ", ".join(sorted(ep.name for ep in by_name or by_dist)))
        known = [ep.name for ep in eps] + [ep.dist.name for ep in eps if getattr(ep, "dist", None)]
        raise SubmitInputError(f"no such plugin file or installed plugin {target!r} (looked for a .py file and for "
                               f"the {GROUP!r} entry points){suggest(target, known)}")
    if len({ep.name for ep in matches}) > 1:
        raise SubmitInputError(f"{target!r} exposes several architectures ("
                               + ", ".join(sorted(ep.name for ep in matches)) + "); choose one with --name")
    ep = matches[0]
    dist = getattr(ep, "dist", None)
    top = ep.value.partition(":")[0].split(".")[0]
    # find_spec on a top-level name locates the package without executing it
    try:
        mspec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        mspec = None
    files: list[Path] = []
    root: Path | None = None
    if mspec is not None and mspec.submodule_search_locations:
        for loc in mspec.submodule_search_locations:
            root = Path(loc)
            files += _source_files(root)
        root = root.parent if root else None
    elif mspec is not None and mspec.origin and Path(mspec.origin).is_file():
        files, root = [Path(mspec.origin)], Path(mspec.origin).parent
    elif dist is not None and dist.files:  # fall back to the installed files the distribution lists
        located = [Path(dist.locate_file(f)) for f in dist.files]
        files = [f for f in located if f.is_file() and f.suffix not in (".pyc", ".pyo")]
        root = Path(os.path.commonpath([str(f) for f in files])) if files else None
    if not files or root is None:
        raise ArenaError(f"cannot find the source files of plugin {ep.name!r} (module {top!r}) to hash them; "
                         "is the package installed correctly?", )
    return PluginSource(kind="package", name=dist.name if dist else top, version=dist.version if dist else None,
                        sha256=sha256_tree(files, root), files=len(files), path=str(root / top), arch=ep.name,
                        entry_point=ep.value)


def default_tasks() -> list[str]:
    """The tasks a submission runs when none are named: the registered tasks that declare ``Task.in_default_suite``
    (a task that fails to load is skipped here; naming it reports the error)."""
    from arena.registry import TASKS

    out = []
    for name in TASKS.names():
        try:
            if TASKS.get(name).cls.in_default_suite:
                out.append(name)
        except Exception:  # noqa: BLE001, S112 - a broken plugin task is not a default
            continue
    return out


def check_tasks(tasks: list[str]) -> list[str]:
    from arena.registry import TASKS

    tasks = [t for t in tasks if t] or default_tasks()
    unknown = [t for t in tasks if t not in TASKS]
    if unknown:
        raise SubmitInputError(f"unknown task {unknown[0]!r}{suggest(unknown[0], TASKS.names())}")
    return tasks


def check_name(name: str, plugin_name: str, taken: dict[str, str]) -> str | None:
    """Why ``name`` may not be used by this plugin (None when it may): lowercase kebab-case, not a built-in's, not
    another plugin's. ``taken`` maps names already used by other plugins to the plugin that uses them."""
    from arena.registry import BUILTIN_ARCHS

    if not isinstance(name, str) or not NAME_RE.match(name) or len(name) > 64:
        return f"architecture name {name!r} must be lowercase kebab-case (e.g. 'my-mixer'), at most 64 characters"
    if name in BUILTIN_ARCHS:
        return f"{name!r} is the name of a built-in architecture; a plugin needs a name of its own"
    owner = taken.get(name)
    if owner is not None and owner != plugin_name:
        return f"{name!r} is already used by the plugin {owner!r}; choose another name"
    return None


def names_taken(url: str | None) -> dict[str, str]:
    """Architecture names that installed plugins (entry points) and recorded plugin runs already use."""
    from importlib.metadata import entry_points

    taken: dict[str, str] = {}
    for ep in entry_points(group=GROUP):
        dist = getattr(ep, "dist", None)
        taken.setdefault(ep.name, dist.name if dist else ep.value)
    if url:
        from sqlalchemy import inspect, select

        from arena.store.engine import open_store
        from arena.store.models import Run

        engine = open_store(url)
        try:
            if inspect(engine).has_table("runs"):
                with engine.connect() as c:
                    for arch, plugin in c.execute(select(Run.arch, Run.plugin_name).where(Run.source == "plugin")
                                                  .distinct()):
                        taken.setdefault(arch, plugin)
        finally:
            engine.dispose()
    return taken
