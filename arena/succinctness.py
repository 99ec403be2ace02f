"""Succinctness: the smallest model that solves a task at depth d, for each architecture, and how it grows with d.

Protocol (SPECS.md §2, "parameters needed vs d"): for each (arch, d), P*(arch, d) is the smallest non-embedding
parameter count on a width ladder (d_model in x sqrt(2) steps) whose runs reach the target score on held-out data
in >= 2 of 3 seeds (a seed succeeds if any learning rate of the grid does). The ladder is searched by bisection
(assuming success is monotone in width), not the full grid, and seeds are run lazily (the third seed only when the
first two disagree). Every run goes through the sweep machinery, so it is recorded in the database and a rerun of
the same command skips finished runs. Then log2 P* is fitted against d (exponential growth) and against log2 d
(polynomial growth) by least squares, compared by R^2 and AIC, with bootstrap CIs on the slopes.
"""

from __future__ import annotations

import csv
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from arena.errors import ArenaError, suggest
from arena.sweep import Job, run_jobs

CAVEATS = (
    "Trained size is only an UPPER bound on the smallest model that can represent the solution: optimisation "
    "failures (few steps, one LR, CPU budget) inflate P*.",
    "Units are float32 parameters and state floats, not bits: one float can carry more than one bit, so the "
    "2^d-bit lower bounds constrain bits, and we report units.",
    "Sequence length grows like 2^d, so FLOPs and latency grow with d for every architecture, not only the "
    "ones whose size grows.",
    "Compressive memory is lossy: compressive attention should sit between the transformer and the RNN on CC and "
    "NP-mem once the block length exceeds its memory.",
)

PROTOCOLS = ("per-depth", "cumulative")

MERGE_KEEPS = ("last", "smallest")  # merge_tables: which row of an (arch, depth) that several tables hold is kept

TARGET_NOTE = "score = the task metric on its headline split (counter-chain: per-bit accuracy; nested-parity: " \
              "label accuracy)"


def parse_depths(text: str) -> list[int]:
    """``1-4`` or ``1,2,3`` (or both, comma-separated); at most MAX_DEPTHS depths, each in [0, MAX_DEPTH]."""
    from arena.validation import MAX_DEPTH, MAX_DEPTHS

    out: set[int] = set()
    try:
        for part in text.split(","):
            part = part.strip()
            if not part:
                continue
            lo, sep, hi = part.partition("-")
            a, b = (int(lo), int(hi)) if sep else (int(lo), int(lo))
            if a < 0 or b > MAX_DEPTH:
                raise ArenaError(f"--depths must lie in 0..{MAX_DEPTH:,}, got {part!r}")
            if b - a + 1 + len(out) > MAX_DEPTHS:
                raise ArenaError(f"--depths {text!r} gives more than {MAX_DEPTHS} depths; pick a few (e.g. 1-8)")
            out.update(range(a, b + 1))
    except ValueError:
        raise ArenaError(f"--depths expects e.g. 1-4 or 1,2,3, got {text!r}") from None
    if not out:
        raise ArenaError(f"--depths expects non-negative depths, got {text!r}")
    return sorted(out)


def parse_ladder(text: str) -> list[int]:
    """``LO-HI`` -> d_model values LO, LO*sqrt2, ... <= HI (rounded, deduplicated); or an explicit comma list."""
    from arena.validation import MAX_WIDTH

    try:
        if "-" in text and "," not in text:
            lo, hi = (int(x) for x in text.split("-"))
            if not 1 <= lo <= hi <= MAX_WIDTH:  # LO = 0 would never grow: refuse before the loop
                raise ArenaError(f"--ladder LO-HI needs 1 <= LO <= HI <= {MAX_WIDTH}, got {text!r}")
            vals, x = [], float(lo)
            while round(x) <= hi:
                vals.append(int(round(x)))
                x *= math.sqrt(2)
        else:
            vals = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ArenaError(f"--ladder expects LO-HI or a comma list of widths, got {text!r}") from None
    vals = sorted(set(vals))
    if not vals or vals[0] < 1:
        raise ArenaError(f"--ladder gives no positive widths: {text!r}")
    if vals[-1] > MAX_WIDTH or len(vals) > 64:
        raise ArenaError(f"--ladder widths must be at most {MAX_WIDTH} and at most 64 of them, got {text!r}")
    return vals


@dataclass
class SuccinctnessConfig:
    task: str
    archs: list[str]
    depths: list[int]
    target: float = 0.95
    ladder: list[int] = field(default_factory=lambda: parse_ladder("4-128"))
    seeds: int = 3
    lrs: list[float] = field(default_factory=lambda: [1e-3])
    n_layers: dict[str, int] = field(default_factory=dict)
    variant: str | None = None
    overrides: list[str] = field(default_factory=list)
    max_steps: int = 300
    time_limit_s: float | None = None
    tag: str = ""
    pilot: int = 0  # widths piloted with seed 0 before the bisection (0: none)
    state_bits: bool = True  # measure the state in bits of the passing runs at P* (architectures with step())
    stack: int = 8  # runs of one probe (seeds x lrs) trained as one stack when tiny (arena.sweep.group_jobs)
    protocol: str = "per-depth"  # or "cumulative": train on depths 1..d, val and test at exactly d

    @property
    def need(self) -> int:
        """Seeds that must succeed: 2 of 3 (ceil of two thirds in general)."""
        return max(1, math.ceil(2 * self.seeds / 3))

    @property
    def label(self) -> str:
        """The table's name: task, variant, and the protocol when it is not the per-depth one (a different
        experiment, so a different file and leaderboard curve)."""
        return (self.task + (f"-{self.variant}" if self.variant else "")
                + (f"-{self.protocol}" if self.protocol != "per-depth" else ""))


@dataclass
class Search:
    """Bisection for the smallest passing ladder index in [lo, hi); hi == len(ladder) means none passed yet."""

    arch: str
    depth: int
    widths: list[int]
    lo: int = 0
    hi: int = -1
    cur: int | None = None
    k: int = 0  # seeds in play at the current probe
    outcomes: dict[int, tuple[bool, int]] = field(default_factory=dict)  # index -> (passed, seeds that succeeded)
    runs: int = 0
    done: bool = False
    pilot: list[int] = field(default_factory=list)  # ladder indices still to be piloted (seed 0, every lr)

    def __post_init__(self) -> None:
        if self.hi < 0:
            self.hi = len(self.widths)


def pilot_indices(n: int, k: int) -> list[int]:
    """k ladder indices spread evenly from the smallest to the largest width (all of them when k >= n)."""
    if k <= 0:
        return []
    if k >= n:
        return list(range(n))
    return sorted({round(i * (n - 1) / (k - 1)) for i in range(k)}) if k > 1 else [n - 1]


def arch_overrides(arch: str, overrides: list[str]) -> list[str]:
    """The overrides that apply to ``arch``: ``ARCH:KEY=VALUE`` only for that arch, and ``arch.X=...`` only for
    architectures that have a field X (so ``--set arch.n_heads=2`` can be given next to an LSTM)."""
    from arena.registry import get_arch

    fields = get_arch(arch).config.model_fields
    out = []
    for o in overrides:
        key = o.partition("=")[0].strip()
        if ":" in key.split(".")[0]:
            who, _, rest = o.partition(":")
            if who.strip() != arch:
                continue
            o, key = rest, rest.partition("=")[0].strip()
        if key.startswith("arch.") and key[5:] not in fields:
            continue
        out.append(o)
    return out


def _width_step(arch: str, overrides: list[str]) -> int:
    """What the ladder's widths must be multiples of: the spec's ``width_step`` under its default config with the
    ``--set arch.X=...`` overrides that apply to it."""
    from arena.registry import get_arch
    from arena.spec import parse_pair

    spec = get_arch(arch)
    given = {}
    for o in arch_overrides(arch, overrides):
        k, v = parse_pair(o)
        k = k.removeprefix("arch.")
        if k in spec.config.model_fields:
            given[k] = v
    return spec.width_step(spec.config.model_construct(**given))


def _job(cfg: SuccinctnessConfig, arch: str, depth: int, width: int, seed: int, lr: float,
         cache: dict[tuple, Job]) -> Job:
    key = (arch, depth, width, seed, lr)
    if key in cache:
        return cache[key]
    from arena.registry import get_task
    from arena.runner import prepare
    from arena.spec import RunSpec

    task_spec = get_task(cfg.task)
    # per-depth: every set (train, val, test) at exactly this depth; cumulative: train on 1..depth, score at depth
    at_depth = (task_spec.cls.cumulative_config(depth) if cfg.protocol == "cumulative"
                else task_spec.cls.depth_config(depth))
    if at_depth is None:
        what = "no cumulative split (Task.cumulative_config)" if cfg.protocol == "cumulative" else \
            "no depth knob (Task.depth_config); succinctness needs a depth family"
        raise ArenaError(f"task {cfg.task!r} has {what}")
    task_cfg, split = dict(at_depth[0]), at_depth[1]
    if cfg.variant:
        task_cfg["variant"] = cfg.variant
    train = {"max_steps": cfg.max_steps, "lr": lr, "eval_every": max(10, cfg.max_steps // 6),
             "warmup_steps": min(100, cfg.max_steps // 10), "checkpoint_every": max(50, cfg.max_steps // 2)}
    rs = RunSpec(arch=arch, task=cfg.task, split=split, size="small", d_model=width,
                 n_layers=cfg.n_layers.get(arch), seed=seed, task_config=task_cfg, train=train,
                 latency={"enabled": False})
    res = prepare(rs, arch_overrides(arch, cfg.overrides))
    job = Job(res.spec.model_dump(mode="json"), (), res.config_hash,
              f"{arch} d={depth} width={width} seed={seed} lr={lr:g}", res.shape.d_model)
    cache[key] = job
    return job


def _widths(cfg: SuccinctnessConfig, arch: str) -> list[int]:
    step = _width_step(arch, cfg.overrides)
    return sorted({max(step, int(math.ceil(w / step) * step)) for w in cfg.ladder})


def _seed_ok(cfg: SuccinctnessConfig, s: Search, index: int, seed: int, scores: dict[str, float | None],
             failed: set[str], cache: dict[tuple, Job]) -> tuple[bool, list[Job]]:
    """Whether any learning rate of this seed reaches the target at ladder index ``index``, and the runs missing
    for deciding it."""
    ok, missing = False, []
    for lr in cfg.lrs:
        j = _job(cfg, s.arch, s.depth, s.widths[index], seed, lr, cache)
        if j.config_hash in scores:
            sc = scores[j.config_hash]
            ok = ok or (sc is not None and sc >= cfg.target)
        elif j.config_hash not in failed:
            missing.append(j)
    return ok, ([] if ok else missing)


def _run_pilot(cfg: SuccinctnessConfig, s: Search, scores: dict[str, float | None], failed: set[str],
               cache: dict[tuple, Job]) -> list[Job]:
    """The pilot (seed 0 at a few widths) brackets the bisection: below the smallest width where seed 0 passes,
    above the largest pilot width under it that failed. If no pilot width passes, the largest width is probed."""
    needed, passing = [], []
    for i in s.pilot:
        ok, missing = _seed_ok(cfg, s, i, 0, scores, failed, cache)
        needed.extend(missing)
        if ok:
            passing.append(i)
    if needed:
        return needed
    if passing:
        top = min(passing)
        below = [i for i in s.pilot if i < top]
        s.lo, s.hi = (max(below) + 1 if below else 0), top + 1  # top + 1 is a guess, checked when reached
    else:
        s.lo, s.hi = len(s.widths) - 1, len(s.widths)
    s.pilot = []
    return []


def _advance(cfg: SuccinctnessConfig, s: Search, scores: dict[str, float | None], failed: set[str],
             cache: dict[tuple, Job]) -> list[Job]:
    """Move the search as far as known scores allow; return the jobs whose results are needed next."""
    if s.pilot:
        needed = _run_pilot(cfg, s, scores, failed, cache)
        if needed:
            return needed
    while not s.done:
        if s.cur is None:
            if s.lo >= s.hi and s.hi < len(s.widths) and s.hi not in s.outcomes:
                s.hi = len(s.widths)  # the pilot's guessed upper end was never checked: search above it
            if s.lo >= s.hi:
                s.done = True
                return []
            s.cur, s.k = (s.lo + s.hi) // 2, cfg.need
        needed, succ, lost = [], 0, 0
        for seed in range(s.k):
            seed_ok, missing = _seed_ok(cfg, s, s.cur, seed, scores, failed, cache)
            succ += seed_ok
            lost += not seed_ok and not missing  # this seed is decided, and it failed
            needed.extend(missing)
        settled = lost > cfg.seeds - cfg.need  # the width fails whatever the seeds not yet known would say
        if needed and not settled:
            return needed
        remaining = cfg.seeds - s.k
        if settled or succ >= cfg.need or succ + remaining < cfg.need:
            passed = succ >= cfg.need
            s.outcomes[s.cur] = (passed, succ)
            if passed:
                s.hi = s.cur
            else:
                s.lo = s.cur + 1
            s.cur = None
        else:
            s.k += 1
    return []


def search_all(cfg: SuccinctnessConfig, *, db: str | None = None, executor: str = "local",
               scheduler: str | None = None, workers: int = 1, progress: bool = False) -> tuple[list[Search], Any]:
    from arena.store import repo
    from arena.store.engine import open_store
    from arena.sweep import make_executor

    engine = open_store(db)
    cache: dict[tuple, Job] = {}
    searches = [Search(a, d, _widths(cfg, a)) for d in cfg.depths for a in cfg.archs]
    for s in searches:
        s.pilot = pilot_indices(len(s.widths), cfg.pilot)
    scores: dict[str, float | None] = {}
    failed: set[str] = set()
    t0 = time.monotonic()
    ex = None
    try:
        for rnd in range(1, 1000):
            jobs: list[Job] = []
            for s in searches:
                jobs.extend(_advance(cfg, s, scores, failed, cache))
            fresh, recorded = [], False
            for j in {j.config_hash: j for j in jobs}.values():  # recorded already (an earlier invocation)?
                row = repo.find_completed(engine, j.config_hash)
                if row is not None:
                    scores[j.config_hash] = row.score
                    recorded = True
                else:
                    fresh.append(j)
            if not jobs:
                break
            if recorded or not fresh:  # decide again with what the database knew before training anything
                continue  # (a seed recorded as failed can settle a width without its sibling seeds)
            if cfg.time_limit_s is not None and time.monotonic() - t0 > cfg.time_limit_s:
                break
            if ex is None:
                ex = make_executor(executor, scheduler, workers)
            deadline = None if cfg.time_limit_s is None else t0 + cfg.time_limit_s
            summary = run_jobs(fresh, engine=engine, executor_obj=ex, progress=progress,
                               name=f"{cfg.label} round {rnd}", deadline=deadline, stack=cfg.stack)
            for j in fresh:
                row = repo.find_completed(engine, j.config_hash)
                if row is not None:
                    scores[j.config_hash] = row.score
                elif j.config_hash in summary.errors:
                    failed.add(j.config_hash)
            for s in searches:
                s.runs = sum(1 for key, j in cache.items() if key[0] == s.arch and key[1] == s.depth
                             and j.config_hash in scores)
            if summary.stopped_by_deadline:
                break
    finally:
        if ex is not None:
            ex.close()
    return searches, engine, cache


def _runs_of(s: Search, engine: Any, cache: dict[tuple, Job]) -> list[tuple[tuple, Any]]:
    """(key, completed run row) of every run this search used."""
    from arena.store import repo

    out = []
    for key, j in cache.items():
        if key[0] == s.arch and key[1] == s.depth:
            r = repo.find_completed(engine, j.config_hash)
            if r is not None:
                out.append((key, r))
    return out


def _budget(runs: list[tuple[tuple, Any]]) -> dict[str, float]:
    """CPU and wall seconds the search's runs took (training share + evaluation + measurement)."""
    cpu = sum(float((r.extra or {}).get("cpu_seconds") or r.train_seconds or 0.0) for _, r in runs)
    wall = sum(float((r.extra or {}).get("wall_seconds") or r.train_seconds or 0.0) for _, r in runs)
    return {"cpu_seconds": round(cpu, 1), "wall_seconds": round(wall, 1)}


def _state_bits(cfg: SuccinctnessConfig, s: Search, idx: int, engine: Any, cache: dict[tuple, Job]) -> dict | None:
    """The smallest state in bits among the runs that passed at P* (measured from each run's final checkpoint with
    :func:`arena.statebits.measure_state_bits`, then kept in the run's ``extra``)."""
    from arena.registry import get_arch
    from arena.runner import build_for, checkpoint_path, prepare
    from arena.spec import RunSpec
    from arena.statebits import measure_state_bits
    from arena.store import repo

    if not get_arch(s.arch).supports_step:
        return None
    best = None
    for (_arch, _depth, width, _seed, _lr), r in _runs_of(s, engine, cache):
        if width != s.widths[idx] or r.score is None or r.score < cfg.target:
            continue
        sb = (r.extra or {}).get("state_bits")
        if sb is None:
            ck = checkpoint_path(r.config_hash)
            if not ck.exists():
                continue
            res = prepare(RunSpec.model_validate(r.config["spec"]))
            model = build_for(res)
            from arena.train import load_state, read_checkpoint

            load_state(model, read_checkpoint(ck, advice="delete it; the run is retrained next time"), ck,
                       f"run {r.id}")
            sb = measure_state_bits(model, res.task, r.state_size)
            sb["run_id"] = r.id
            repo.add_measurement(engine, r.id, "state_bits", sb)
        if sb.get("state_bits") is not None and (best is None or sb["state_bits"] < best["state_bits"]):
            best = sb
    return best


def _row(cfg: SuccinctnessConfig, s: Search, engine: Any, cache_lookup: dict[tuple, Job]) -> dict[str, Any]:
    from arena.store import repo

    status = "found" if s.done and s.hi < len(s.widths) else ("not reached" if s.done else "unfinished")
    idx = s.hi if status == "found" else None
    failed_idx = [i for i, (ok, _) in s.outcomes.items() if not ok]
    lower_idx = max(failed_idx) if failed_idx else None
    row: dict[str, Any] = {"task": cfg.label, "arch": s.arch, "depth": s.depth, "p_star": None, "state_size": None,
                           "flops": None, "reached": status == "found", "status": status, "d_model": None,
                           "n_layers": None, "p_star_lower": None, "seeds_passed": None, "seeds": cfg.seeds, "runs": s.runs,
                           "target": cfg.target, "max_steps": cfg.max_steps, "task_name": cfg.task,
                           "variant": cfg.variant or "", "protocol": cfg.protocol,
                           "lrs": " ".join(f"{x:g}" for x in cfg.lrs),
                           "ladder": " ".join(str(w) for w in s.widths)}

    def measured(i: int) -> Any:
        for seed in range(cfg.seeds):
            for lr in cfg.lrs:
                j = cache_lookup.get((s.arch, s.depth, s.widths[i], seed, lr))
                r = j and repo.find_completed(engine, j.config_hash)
                if r:
                    return r
        return None

    used = _runs_of(s, engine, cache_lookup)
    row["runs"] = len(used)  # also when every run was read back from an earlier invocation
    row.update(_budget(used))
    row.update(state_bits=None, bits_per_float=None, state_bits_bound=_bound(cfg, s.depth), p_star_run_id=None,
               p_star_config_hash=None, git_commit=None)
    if idx is not None:
        r = measured(idx)
        if r is not None:
            row.update(p_star=r.params_non_embedding, state_size=r.state_size, flops=r.flops_forward_per_token,
                       d_model=s.widths[idx], n_layers=(r.config or {}).get("shape", {}).get("n_layers"),
                       seeds_passed=s.outcomes[idx][1], p_star_run_id=r.id, p_star_config_hash=r.config_hash,
                       git_commit=r.provenance.git_commit if r.provenance else None)
        if cfg.state_bits:
            sb = _state_bits(cfg, s, idx, engine, cache_lookup)
            if sb is not None:
                row.update(state_bits=sb["state_bits"], bits_per_float=sb["bits_per_float"])
    if lower_idx is not None:
        r = measured(lower_idx)
        if r is not None:
            row["p_star_lower"] = r.params_non_embedding
            if row["n_layers"] is None:
                row["n_layers"] = (r.config or {}).get("shape", {}).get("n_layers")
    return row


def _bound(cfg: SuccinctnessConfig, depth: int) -> float | None:
    """The task's lower bound on the state (in bits) a left-to-right reader carries at this depth, if it has one."""
    from arena.registry import get_task

    return get_task(cfg.task).cls.state_bits_bound(depth, dict(_task_overrides(cfg), variant=cfg.variant) if cfg.variant else _task_overrides(cfg))


def _task_overrides(cfg: SuccinctnessConfig) -> dict[str, Any]:
    from arena.spec import parse_pair

    out = {}
    for k, v in map(parse_pair, cfg.overrides):
        if k.startswith("task."):
            out[k[5:]] = v
    return out


def fit_growth(depths: list[float], p_star: list[float], n_boot: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Least-squares fits of log2 P* = a + b d (exponential) and log2 P* = a + b log2 d (polynomial)."""
    d = np.asarray(depths, float)
    y = np.log2(np.asarray(p_star, float))
    out: dict[str, Any] = {"n": int(len(d))}
    if len(d) < 2 or len(set(d.tolist())) < 2 or (d <= 0).any():
        return out | {"preferred": None}

    def ls(x: np.ndarray, yy: np.ndarray) -> tuple[float, float, float]:
        A = np.stack([np.ones_like(x), x], 1)
        coef, *_ = np.linalg.lstsq(A, yy, rcond=None)
        rss = float(((A @ coef - yy) ** 2).sum())
        return float(coef[0]), float(coef[1]), rss

    tss = float(((y - y.mean()) ** 2).sum())
    rng = np.random.default_rng(seed)
    for name, x in (("exp", d), ("poly", np.log2(d))):
        a, b, rss = ls(x, y)
        n = len(d)
        aic = n * math.log(max(rss, 1e-12) / n) + 2 * 2
        r2 = 1 - rss / tss if tss > 0 else float("nan")
        slopes = []
        if n >= 3:
            for _ in range(n_boot):
                i = rng.integers(0, n, n)
                if len(set(x[i].tolist())) < 2:
                    continue
                slopes.append(ls(x[i], y[i])[1])
        ci = [round(float(np.percentile(slopes, 2.5)), 4), round(float(np.percentile(slopes, 97.5)), 4)] \
            if len(slopes) > 20 else None
        out[name] = {"intercept": round(a, 4), "slope": round(b, 4), "r2": round(r2, 4), "aic": round(aic, 3),
                     "slope_ci95": ci}
    # two points fit both models exactly: no preference without a third depth
    out["preferred"] = None if len(d) < 3 else ("exponential" if out["exp"]["aic"] < out["poly"]["aic"]
                                                 else "polynomial")
    return out


def write_csv(rows: list[dict[str, Any]], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # every key of every row, in first-seen order: merged tables may mix rows written before a column existed
    cols = list(dict.fromkeys(k for r in rows for k in r)) if rows else [
        "task", "arch", "depth", "p_star", "state_size", "flops", "reached"]
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols)
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if v is None else v) for k, v in r.items()})


def _series(rows: list[dict[str, Any]], arch: str, key: str) -> list[tuple[int, float]]:
    return sorted((r["depth"], r[key]) for r in rows if r["arch"] == arch and r["reached"] and r.get(key))


def fit_all(rows: list[dict[str, Any]], key: str = "p_star") -> dict[str, Any]:
    """Growth fits of ``key`` (p_star or state_bits) over the depths each architecture reached."""
    out = {}
    for arch in sorted({r["arch"] for r in rows}):
        pts = _series(rows, arch, key)
        out[arch] = fit_growth([p[0] for p in pts], [p[1] for p in pts])
    return out


def _fit_label(arch: str, f: dict[str, Any]) -> str:
    if not f.get("preferred"):
        return arch
    ci = f["exp"].get("slope_ci95")
    ci_txt = f", exp slope {f['exp']['slope']:.2f} [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else ""
    return f"{arch} ({f['preferred']}: exp R²={f['exp']['r2']}, poly R²={f['poly']['r2']}{ci_txt})"


def plot(rows: list[dict[str, Any]], fits: dict[str, Any], path: Path, title: str,
         fits_bits: dict[str, Any] | None = None) -> None:
    """P*(d) per architecture (and, when measured, the state in bits at P* beside the task's lower bound)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with_bits = any(r.get("state_bits") for r in rows)
    fig, axes = plt.subplots(1, 2 if with_bits else 1, figsize=(13 if with_bits else 7.5, 6.2), squeeze=False)
    ax = axes[0][0]
    archs = sorted({r["arch"] for r in rows})
    depths = sorted({r["depth"] for r in rows})
    marked, mixed = False, len({r.get("protocol") or PROTOCOLS[0] for r in rows}) > 1  # points of two protocols
    for i, arch in enumerate(archs):
        color = f"C{i}"
        pts = _series(rows, arch, "p_star")
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", color=color,
                    label=_fit_label(arch, fits.get(arch, {})))
        cum = [(r["depth"], r["p_star"]) for r in rows if mixed and r["arch"] == arch and r["reached"]
               and r.get("p_star") and r.get("protocol") == "cumulative"]
        if cum:  # a best-of-protocols table (merge_tables keep="smallest"): ring the points the curriculum found
            ax.plot([p[0] for p in cum], [p[1] for p in cum], "s", color="k", mfc="none", ms=13,
                    label=None if marked else "found under the cumulative protocol (others: per depth)")
            marked = True
        lows = [(r["depth"], r["p_star_lower"]) for r in rows if r["arch"] == arch and not r["reached"]
                and r["p_star_lower"]]
        if lows:
            ax.plot([p[0] for p in lows], [p[1] for p in lows], "^", color=color, mfc="none", ms=9,
                    label=f"{arch}: not reached (P* > largest failing size)")
    _axes(ax, depths, "P* (non-embedding parameters)", title)
    if with_bits:
        bx = axes[0][1]
        for i, arch in enumerate(archs):
            pts = _series(rows, arch, "state_bits")
            if pts:
                bx.plot([p[0] for p in pts], [p[1] for p in pts], "s-", color=f"C{i}",
                        label=_fit_label(arch, (fits_bits or {}).get(arch, {})))
        bound = sorted({(r["depth"], r["state_bits_bound"]) for r in rows if r.get("state_bits_bound")})
        if bound:
            bx.plot([b[0] for b in bound], [b[1] for b in bound], "k--", label="lower bound for a left-to-right reader")
        _axes(bx, depths, "state in bits at P* (b x state floats; b = fewest bits within 1 point)",
              "carried state in bits vs the task's bound")
    fig.text(0.01, 0.01, "Caveats:\n" + "\n".join(f"{i}. {c}" for i, c in enumerate(CAVEATS, 1)), fontsize=5.6,
             va="bottom", wrap=True)
    fig.subplots_adjust(bottom=0.27)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=130)
    plt.close(fig)


def _axes(ax: Any, depths: list[int], ylabel: str, title: str) -> None:
    ax.set_yscale("log", base=2)
    ax.margins(x=0.1, y=0.25 + 0.05 * max(0, len(ax.get_legend_handles_labels()[0]) - 3))  # room for the legend
    if depths:
        ax.set_xticks(depths)
    ax.set_xlabel("depth d")
    ax.set_ylabel(ylabel, fontsize=8)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=6.5, loc="best", framealpha=0.6)


def check_config(cfg: SuccinctnessConfig, max_runs: int | None = None) -> None:
    """The options' types and ranges, and the worst-case grid (every arch x depth x width x seed x lr) against the
    run cap: all before any run is started."""
    from arena.validation import check_grid, check_number

    check_number("--target", cfg.target, lo=0, hi=1)
    check_number("--seeds", cfg.seeds, lo=1, hi=100, integer=True)
    check_number("--max-steps", cfg.max_steps, lo=0, hi=100_000_000, integer=True)
    check_number("--pilot", cfg.pilot, lo=0, hi=64, integer=True)
    check_number("--stack", cfg.stack, lo=1, hi=64, integer=True)
    if cfg.time_limit_s is not None:
        check_number("--time-limit", cfg.time_limit_s, lo=0, lo_open=True)
    if not cfg.lrs:
        raise ArenaError("--lrs is empty")
    for lr in cfg.lrs:
        check_number("--lrs", lr, lo=0, hi=10, lo_open=True)
    if not cfg.archs:
        raise ArenaError("--archs is empty")
    if cfg.protocol not in PROTOCOLS:
        raise ArenaError(f"--protocol must be one of {', '.join(PROTOCOLS)}, got {cfg.protocol!r}"
                         f"{suggest(cfg.protocol, PROTOCOLS)}")
    for arch, n in cfg.n_layers.items():
        check_number(f"--n-layers {arch}", n, lo=1, hi=1024, integer=True)
    check_grid(len(cfg.archs) * len(cfg.depths) * len(cfg.ladder) * cfg.seeds * len(cfg.lrs),
               f"succinctness on {cfg.task!r} ({len(cfg.archs)} archs x {len(cfg.depths)} depths x "
               f"{len(cfg.ladder)} widths x {cfg.seeds} seeds x {len(cfg.lrs)} lrs)", max_runs)


def run_succinctness(cfg: SuccinctnessConfig, *, db: str | None = None, executor: str = "local",
                     scheduler: str | None = None, workers: int = 1, out_dir: str | Path = "results",
                     progress: bool = False, max_runs: int | None = None) -> dict[str, Any]:
    from arena.registry import get_task
    from arena.validation import check_out_dir

    check_config(cfg, max_runs)
    check_out_dir(out_dir)  # before hours of training, not after
    for arch in cfg.archs:  # the largest probe of each arch: overrides valid and the model fits in memory
        _job(cfg, arch, max(cfg.depths), _widths(cfg, arch)[-1], 0, cfg.lrs[0], {})

    spec = get_task(cfg.task)
    if not {"depth", "iid_depths"} & set(spec.config.model_fields):
        raise ArenaError(f"task {cfg.task!r} has no 'depth' (or 'iid_depths') config field; succinctness needs a "
                         "depth-knob task (recall-depth, counter-chain, nested-parity, scan-depth)")
    if cfg.variant and "variant" not in spec.config.model_fields:
        raise ArenaError(f"task {cfg.task!r} has no variants; drop --variant")
    if cfg.protocol == "cumulative" and spec.cls.cumulative_config(1) is None:
        raise ArenaError(f"task {cfg.task!r} offers no cumulative protocol (train on depths 1..d, score at d); "
                         "use --protocol per-depth")
    check_config(cfg)
    wall0, cpu0 = time.monotonic(), _process_cpu()
    searches, engine, cache = search_all(cfg, db=db, executor=executor, scheduler=scheduler, workers=workers,
                                         progress=progress)
    rows = [_row(cfg, s, engine, cache) for s in searches]
    budget = {"runs": sum(r["runs"] for r in rows),
              "run_cpu_seconds": round(sum(r["cpu_seconds"] for r in rows), 1),
              "run_wall_seconds": round(sum(r["wall_seconds"] for r in rows), 1),
              "invocation_wall_seconds": round(time.monotonic() - wall0, 1),
              "invocation_cpu_seconds": round(_process_cpu() - cpu0, 1)}
    if cfg.tag:  # a different budget is a different curve: keep it apart on the leaderboard
        for r in rows:
            r["task"] = f"{cfg.label}-{cfg.tag}"
    rows.sort(key=lambda r: (r["arch"], r["depth"]))
    fits, fits_bits = fit_all(rows), fit_all(rows, "state_bits")
    out = Path(out_dir)
    stem = f"succinctness_{cfg.label}" + (f"_{cfg.tag}" if cfg.tag else "")
    csv_path, png_path = out / f"{stem}.csv", out / f"{stem}.png"
    write_csv(rows, csv_path)
    title = (f"Succinctness on {cfg.label}: smallest width reaching {cfg.target:g} in >= {cfg.need} of {cfg.seeds} "
             f"seeds\n({cfg.max_steps} steps, lr {'/'.join(f'{x:g}' for x in cfg.lrs)}, ladder "
             f"{cfg.ladder[0]}..{cfg.ladder[-1]} x sqrt2)")
    plot(rows, fits, png_path, title, fits_bits)
    return {"task": cfg.label, "rows": rows, "fits": fits, "fits_state_bits": fits_bits, "csv": str(csv_path),
            "png": str(png_path), "budget": budget,
            "caveats": list(CAVEATS), "target_note": TARGET_NOTE}


def _process_cpu() -> float:
    """CPU seconds of this process and of its finished child processes (the local executor's workers)."""
    import resource

    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def read_csv(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a succinctness CSV with numbers and booleans restored."""
    rows = []
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            row: dict[str, Any] = dict(r)
            for k in ("depth", "p_star", "state_size", "n_layers", "p_star_lower", "seeds_passed", "seeds", "runs", "d_model",
                      "max_steps", "state_bits", "bits_per_float", "p_star_run_id"):
                if k in row:
                    row[k] = int(float(row[k])) if row[k] not in ("", None) else None
            for k in ("flops", "target", "state_bits_bound", "cpu_seconds", "wall_seconds"):
                if k in row:
                    row[k] = float(row[k]) if row[k] not in ("", None) else None
            row["reached"] = str(row.get("reached")).lower() in ("true", "1", "yes")
            rows.append(row)
    return rows


def merge_tables(paths: list[str | Path], out_stem: str | Path, title: str, task_label: str | None = None,
                 keep: str = "last") -> dict[str, Any]:
    """Combine tables of several invocations (e.g. one per architecture) into one CSV + plot, refitting growth.

    ``keep="last"``: a later file's (arch, depth) row replaces an earlier one. ``keep="smallest"``: the tables are
    searches of the same task and target under different protocols (per-depth, cumulative); each (arch, depth)
    keeps the found row with the smallest P* (else the "not reached" row with the largest lower bound). P* bounds
    the size the task needs from above, so the smallest size any protocol trained to the target is the tightest
    bound measured. The kept row's ``protocol`` says which protocol found it, ``protocols_searched`` which ones
    were tried, and ``runs`` / ``cpu_seconds`` / ``wall_seconds`` sum over all of them (the cost of the bound)."""
    if keep not in MERGE_KEEPS:
        raise ValueError(f"keep must be one of {MERGE_KEEPS}, got {keep!r}")
    groups: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for p in paths:
        for r in read_csv(p):
            groups.setdefault((r["arch"], r["depth"]), []).append(r)
    rows = sorted((_keep_row(g, keep) for g in groups.values()), key=lambda r: (r["arch"], r["depth"]))
    if task_label:
        for r in rows:
            r["task"] = task_label
    fits, fits_bits = fit_all(rows), fit_all(rows, "state_bits")
    stem = Path(out_stem)
    write_csv(rows, stem.with_suffix(".csv"))
    plot(rows, fits, stem.with_suffix(".png"), title, fits_bits)
    return {"rows": rows, "fits": fits, "fits_state_bits": fits_bits}


def _keep_row(group: list[dict[str, Any]], keep: str) -> dict[str, Any]:
    """The row ``merge_tables`` keeps for one (arch, depth) out of the rows the tables hold for it, in file order."""
    if keep == "last":
        return group[-1]
    found = [r for r in group if r["reached"] and r.get("p_star")]
    best = dict(min(found, key=lambda r: r["p_star"]) if found else
                max(group, key=lambda r: r.get("p_star_lower") or 0))
    best["protocol"] = best.get("protocol") or PROTOCOLS[0]  # tables written before the column were per-depth
    best["protocols_searched"] = " ".join(sorted({r.get("protocol") or PROTOCOLS[0] for r in group}))
    for k in ("runs", "cpu_seconds", "wall_seconds"):
        vals = [r[k] for r in group if r.get(k) is not None]
        best[k] = (round(sum(vals), 1) if k != "runs" else sum(vals)) if vals else None
    return best
