"""Rerun a recorded run from its stored config and compare the new scores with the stored ones."""

from __future__ import annotations

from typing import Any

from arena.errors import ArenaError
from arena.runner import Progress, run, run_record
from arena.spec import RunSpec
from arena.store import get_run, open_store


def rerun(run_id: int, db: str | None = None, progress: Progress | None = None,
          tolerance: float = 0.0) -> dict[str, Any]:
    """Execute the stored RunSpec again (a new run row) and diff every stored (split, metric) score."""
    engine = open_store(db)
    old = get_run(engine, run_id)
    if old is None:
        raise ArenaError(f"no run {run_id} in {engine.url.render_as_string(hide_password=True)}")
    if old.status != "completed":
        raise ArenaError(f"run {run_id} is {old.status}; only completed runs can be compared (use --resume to finish it)")
    spec = RunSpec.model_validate(old.config["spec"])
    new = run(spec, engine=engine, progress=progress, command=f"arena rerun {run_id}")
    old_rec = run_record(old)
    diffs = []
    for split, metrics in old_rec["scores"].items():
        for name, value in metrics.items():
            other = new.record["scores"].get(split, {}).get(name)
            same = other is not None and value is not None and abs(other - value) <= tolerance
            diffs.append({"split": split, "metric": name, "stored": value, "new": other, "same": same})
    same_hash = new.record["config_hash"] == old.config_hash
    return {"run_id": run_id, "new_run_id": new.run_id, "config_hash_matches": same_hash,
            "identical": same_hash and all(d["same"] for d in diffs), "scores": diffs}
