"""Mamba scan backends, forward+backward, measured side by side in one run.

Compares one Mamba block (in_proj .. out_proj) with our ``pscan`` and ``seq`` backends against the ``mambapy``
package (PyPI ``mambapy``, ``MambaBlock`` with its parallel scan and with its sequential scan) at the same sizes,
and the bare scans (h_t = a_t h_{t-1} + b_t) alone. Runs are interleaved round-robin so machine noise hits
every variant alike; the report is the median time and the ratio to ``ours pscan``.

Usage::

    OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE python bench/bench_mamba.py [--d-model 64 --seq-len 256 --batch 8]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch

from arena.architectures.mamba import MambaConfig, MambaMixer, scan_parallel, scan_seq


def fwd_bwd(module: torch.nn.Module, x: torch.Tensor) -> Callable[[], None]:
    def run() -> None:
        module.zero_grad(set_to_none=True)
        module(x).square().mean().backward()

    return run


def scan_fwd_bwd(scan: Callable[..., torch.Tensor], a: torch.Tensor, b: torch.Tensor) -> Callable[[], None]:
    def run() -> None:
        aa, bb = a.detach().requires_grad_(), b.detach().requires_grad_()
        scan(aa, bb).square().mean().backward()

    return run


def measure(variants: dict[str, Callable[[], None]], repeats: int, warmup: int = 3) -> dict[str, float]:
    for fn in variants.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {k: [] for k in variants}
    for _ in range(repeats):
        for name, fn in variants.items():  # round-robin: noise is shared by all variants
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def report(title: str, med: dict[str, float], ref: str) -> None:
    print(f"\n{title}")
    print(f"{'variant':<22}{'median ms':>12}{'time / ' + ref:>22}")
    for name, t in med.items():
        print(f"{name:<22}{1e3 * t:>12.2f}{t / med[ref]:>22.2f}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--d-model", type=int, default=64)
    p.add_argument("--seq-len", type=int, default=256)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    d, L, B = args.d_model, args.seq_len, args.batch
    x = torch.randn(B, L, d)

    ours = {be: MambaMixer(d, 0, MambaConfig(backend=be)) for be in ("pscan", "seq")}
    variants = {f"ours {be}": fwd_bwd(m, x) for be, m in ours.items()}
    try:
        from mambapy.mamba import MambaBlock
        from mambapy.mamba import MambaConfig as PyConfig

        for name, use_pscan in (("mambapy pscan", True), ("mambapy seq", False)):
            blk = MambaBlock(PyConfig(d_model=d, n_layers=1, pscan=use_pscan))
            blk.load_state_dict(ours["pscan"].state_dict())  # same names, same shapes: same function
            variants[name] = fwd_bwd(blk, x)
        with torch.no_grad():
            same = (blk(x) - ours["pscan"](x)).abs().max().item()
        print(f"mambapy block == ours after loading our state_dict: max |diff| {same:.2e}")
    except ImportError:
        print("mambapy not installed (pip install mambapy): comparing our backends only")

    print(f"d_model {d}, seq_len {L}, batch {B}, threads {torch.get_num_threads()}, torch {torch.__version__}, "
          f"{args.repeats} interleaved repeats after 3 warm-ups; forward + backward")
    report("Mamba block (in_proj .. out_proj), forward + backward", measure(variants, args.repeats), "ours pscan")

    di, n = 2 * d, 16
    a = torch.rand(B, L, di, n) * 0.5 + 0.5
    b = torch.randn(B, L, di, n)
    scans = {"ours pscan": scan_fwd_bwd(scan_parallel, a, b), "ours seq": scan_fwd_bwd(scan_seq, a, b)}
    try:
        from mambapy.pscan import pscan

        # mambapy's scan takes (B, L, D, N) too
        scans["mambapy pscan"] = scan_fwd_bwd(pscan, a, b)
    except ImportError:
        pass
    report(f"bare scan (B, L, D_in, N) = ({B}, {L}, {di}, {n}), forward + backward",
           measure(scans, args.repeats), "ours pscan")


if __name__ == "__main__":
    main()
