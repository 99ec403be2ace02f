"""`arena submit` overhead: the example plugin's default suite, submitted vs the same run through `arena run`.

Both sides run in this process, alternating, on the same seeds: ``submit()`` of the example plugin's ``gla.py``
(a self-contained file: the default suite, scan-depth at 60 steps, with a fixed data seed so the data are the
same) and ``arena.runner.run()`` of the identical RunSpec (the spec's reproduce command, i.e. ``arena run``),
with the plugin registered in-process. Prints each wall time, the ratio submit / run and the load average.
Target: ratio <= 1.5 (issue 13). Cost: ~2 x (repeats) x 30 s on one core.

    OMP_NUM_THREADS=1 python bench/bench_submit.py --repeats 2
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
GLA = REPO / "examples" / "arena-plugin-example" / "src" / "arena_plugin_example" / "gla.py"


def _register() -> str:
    from arena.registry import register_arch

    spec = importlib.util.spec_from_file_location("bench_gla", GLA)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    register_arch(module.SPEC)
    return module.SPEC.name


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--max-steps", type=int, default=60)
    ap.add_argument("--data-seed", type=int, default=12345)
    args = ap.parse_args()
    import torch

    from arena.runner import run
    from arena.submit import submit
    from arena.submit.suite import suite_spec

    torch.set_num_threads(1)
    arch = _register()
    tmp = Path(tempfile.mkdtemp(prefix="bench-submit-"))
    times: dict[str, list[float]] = {"submit": [], "run": []}
    scores: dict[str, list[float]] = {"submit": [], "run": []}
    for i in range(args.repeats):
        for side in ("submit", "run") if i % 2 == 0 else ("run", "submit"):
            url = f"sqlite:///{tmp / f'{side}{i}.db'}"
            t0 = time.perf_counter()
            if side == "submit":
                res = submit(str(GLA), db=url, max_steps=args.max_steps, data_seed=args.data_seed)
                assert res.ok, res.message
                score = res.runs[0]["score"]
            else:
                spec = suite_spec(arch, "scan-depth", 0, args.data_seed, args.max_steps)
                score = run(spec, db=url).record["score"]
            times[side].append(time.perf_counter() - t0)
            scores[side].append(score)
            print(f"{side:6s} #{i}: {times[side][-1]:6.1f} s  score {score:.4f}  load {os.getloadavg()[0]:.2f}",
                  flush=True)
    s, r = statistics.median(times["submit"]), statistics.median(times["run"])
    print(f"median: submit {s:.1f} s, run {r:.1f} s, ratio submit/run = {s / r:.2f} (target <= 1.5); "
          f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
