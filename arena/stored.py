"""Rebuild a stored run: its resolved spec, its task, and its model with the final weights of its checkpoint.

A derived (head-pruned) run is rebuilt from its parent's configuration, with the recorded heads removed before
its own weights are loaded (``extra["pruning"]["kept"]``: the head indices kept in every layer).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from arena.errors import ArenaError


@dataclass
class StoredRun:
    run: Any  # arena.store.models.Run, detached
    res: Any  # arena.spec.Resolved
    model: torch.nn.Module


def checkpoint_file(run: Any) -> Path:
    """The run's checkpoint: its recorded path, else the config-hash location under $ARENA_CHECKPOINT_DIR."""
    from arena.runner import checkpoint_path

    candidates = [Path(run.checkpoint_path)] if run.checkpoint_path else []
    if run.parent_run_id is None:
        candidates.append(checkpoint_path(run.config_hash))
    for p in candidates:
        if p.is_file():
            return p
    shown = ", ".join(str(p) for p in candidates) or "(none recorded)"
    raise ArenaError(f"run {run.id} has no readable checkpoint (looked at {shown}); checkpoints live under "
                     "$ARENA_CHECKPOINT_DIR (default results/checkpoints) of the machine that trained the run")


def resolve_run(run: Any, overrides: list[str] | None = None) -> Any:
    """The run's :class:`arena.spec.Resolved` (task rebuilt from its seed and config)."""
    from arena.runner import prepare
    from arena.spec import RunSpec

    config = run.config or {}
    if "spec" not in config:
        raise ArenaError(f"run {run.id} has no arena run spec in its config (a submitted or imported run)")
    res = prepare(RunSpec.model_validate(config["spec"]), overrides)
    for what, recorded, now in (("task", run.task_version, res.task_spec.version),
                                ("architecture", run.arch_version, res.arch.version)):
        if recorded != now:
            raise ArenaError(f"run {run.id} was recorded with {what} version {recorded}, this arena has version {now}; "
                             "its data or model would not be the ones it was trained on")
    return res


def build_run_model(run: Any, res: Any) -> torch.nn.Module:
    """The run's architecture at its recorded shape, with any recorded head pruning applied (weights untouched)."""
    from arena.api import ModelShape
    from arena.blocks import build_model

    config = run.config or {}
    shape = ModelShape(**config["shape"])
    arch_cfg = res.arch.config.model_validate(config.get("arch_config", {}))
    torch.manual_seed(res.spec.seed)  # the runner's initialisation: the same seed gives the same untrained model
    model = build_model(res.arch, shape, arch_cfg)
    kept = ((run.extra or {}).get("pruning") or {}).get("kept")
    if kept is not None:
        from arena.prune import apply_kept

        apply_kept(model, kept)
    return model


def load_run(engine: Any, run_id: int, *, overrides: list[str] | None = None, weights: bool = True,
             device: str = "cpu") -> StoredRun:
    """A completed run with its final weights (``weights=False``: freshly initialised with the run's seed)."""
    from arena.store import get_run

    run = get_run(engine, run_id)
    if run is None:
        raise ArenaError(f"no run {run_id} in {engine.url.render_as_string(hide_password=True)}")
    if run.status != "completed":
        raise ArenaError(f"run {run_id} is {run.status}; only completed runs can be analysed or pruned")
    res = resolve_run(run, overrides)
    model = build_run_model(run, res)
    if weights:
        from arena.train import load_state, read_checkpoint

        path = checkpoint_file(run)
        payload = read_checkpoint(path, advice="retrain the run (arena show RUN_ID prints the command)")
        load_state(model, payload, path, f"run {run_id}'s recorded architecture")
    return StoredRun(run, res, model.to(device).eval())


__all__ = ["StoredRun", "load_run", "resolve_run", "build_run_model", "checkpoint_file"]
