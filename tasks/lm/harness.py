"""lm-evaluation-harness on the ``lm`` track's benchmarks: BLiMP and LAMBADA from local files (task YAMLs
written at run time, Hugging Face kept offline) or from the hub, run quietly and with the caller's RNG state kept,
and lm-eval's results turned into arena's ``{"metrics", "slices"}`` (BLiMP: one slice per paradigm)."""

from __future__ import annotations

import contextlib
import logging
import random
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch

from arena.errors import ArenaError
from arena.lm_eval_adapter import ArenaLM
from arena.tasks.lm import data as lm_data


# -- lm-eval driver ---------------------------------------------------------------------------------------------
@contextlib.contextmanager
def _quiet_and_seeded() -> Iterator[None]:
    """Around ``simple_evaluate``: keep the caller's RNG state (lm-eval reseeds the global generators), keep
    stdout clean for ``--json`` and stderr free of dataset/tqdm progress bars (set ``ARENA_LM_EVAL_VERBOSE=1``
    to see them), and skip lm-eval's environment report (``torch.utils.collect_env`` runs subprocesses for
    seconds; arena records its own provenance)."""
    import io
    import os

    import numpy as np

    states = (random.getstate(), np.random.get_state(), torch.get_rng_state())
    loggers = [logging.getLogger(n) for n in ("lm_eval", "lm-eval", "datasets", "httpx", "huggingface_hub")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    verbose = os.environ.get("ARENA_LM_EVAL_VERBOSE", "").strip() in {"1", "true", "yes"}
    sink = sys.stderr if verbose else io.StringIO()
    import lm_eval.evaluator as ev

    # environment report and `git describe` in the CWD (whose failure prints to the terminal): not needed here
    saved = {k: getattr(ev, k) for k in ("add_env_info", "get_git_commit_hash") if hasattr(ev, k)}
    if "add_env_info" in saved:
        ev.add_env_info = lambda storage: None
    if "get_git_commit_hash" in saved:
        ev.get_git_commit_hash = lambda: None
    try:
        with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            yield
    finally:
        for k, v in saved.items():
            setattr(ev, k, v)
        random.setstate(states[0])
        np.random.set_state(states[1])
        torch.set_rng_state(states[2])
        for lg, lv in zip(loggers, levels, strict=True):
            lg.setLevel(lv)


def run_benchmarks(lm: ArenaLM, names: Sequence[str], data_dir: Path | None, limit: int | None = None
                   ) -> dict[str, dict[str, Any]]:
    """Run lm-eval tasks on ``lm``: ``{name: {"metrics": {...}, "slices": {...}}}``.

    ``blimp`` -> metrics ``acc`` (unweighted mean over the 67 paradigms, lm-eval's group aggregate) and ``n``
    (pairs scored), slices ``{"paradigm": {uid: {"acc", "n"}}}``. ``lambada_openai`` -> ``perplexity``, ``acc``,
    ``n``. Other lm-eval tasks (only without a data dir) -> every numeric ``<metric>,none`` value. ``limit`` is
    the number of documents per lm-eval task (per paradigm for BLiMP).
    """
    names = list(dict.fromkeys(names))
    lm_data.require_benchmarks(names, data_dir)  # fail fast, before lm-eval touches the network
    try:
        import lm_eval
        from lm_eval.tasks import TaskManager
    except ImportError as exc:  # pragma: no cover - optional extra
        raise ArenaError(f"lm-eval is not installed ({exc}); pip install 'arena[lm-eval]'") from None
    with contextlib.ExitStack() as stack:
        if data_dir is not None:
            work = Path(stack.enter_context(lm_data.temp_workdir()))
            stack.enter_context(lm_data.offline_hf(work / "hf_home"))
            local = lm_data.write_local_yamls(work / "tasks", data_dir, names, work / "hf_cache", limit)
            tm = TaskManager(include_path=str(work / "tasks"), include_defaults=False)
            task_names = [local[n] for n in names]
        else:
            tm, task_names, local = TaskManager(), names, {n: n for n in names}
        stack.enter_context(_quiet_and_seeded())
        out = lm_eval.simple_evaluate(model=lm, tasks=task_names, task_manager=tm, limit=limit,
                                      bootstrap_iters=0, log_samples=False, batch_size=lm.batch_size)
    if out is None:  # pragma: no cover - only on non-zero ranks
        raise ArenaError("lm-eval returned no results")
    return {name: _collect(name, local[name], out) for name in names}


def _value(entry: dict[str, Any], metric: str) -> float | None:
    v = entry.get(f"{metric},none")
    try:
        return float(v) if v is not None else None
    except (TypeError, ValueError):
        return None


def _n(out: dict[str, Any], task: str) -> int:
    info = out.get("n-samples", {}).get(task, {})
    return int(info.get("effective", info.get("original", 0)) or 0)


def _collect(name: str, task: str, out: dict[str, Any]) -> dict[str, Any]:
    res = out["results"]
    if task not in res:
        raise ArenaError(f"lm-eval returned no result for {task!r} (got {', '.join(sorted(res))})")
    if name == "blimp":
        prefix = f"{task}_"
        per = {}
        for sub, entry in sorted(res.items()):
            if sub.startswith(prefix) and _value(entry, "acc") is not None:
                per[sub[len(prefix) :]] = {"acc": _value(entry, "acc"), "n": float(_n(out, sub))}
        n_total = sum(int(v["n"]) for v in per.values())
        acc = _value(res[task], "acc")
        if acc is None and per:
            acc = sum(v["acc"] for v in per.values()) / len(per)
        return {"metrics": {"acc": acc, "n": float(n_total)}, "slices": {"paradigm": per}}
    metrics = {k.split(",")[0]: float(v) for k, v in res[task].items()
               if k.endswith(",none") and "stderr" not in k and isinstance(v, (int, float))}
    metrics["n"] = float(_n(out, task))
    return {"metrics": metrics, "slices": {}}
