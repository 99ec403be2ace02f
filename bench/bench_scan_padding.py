"""The mamba scan without padding vs padded to the next power of two, forward + backward, side by side.

Blelloch's scan needs a power-of-two length. ``_scan_owned`` splits the length into power-of-two chunks and
carries the state from one to the next; before, it padded with identity elements to the next power of two, up
to 2x the work (recall-depth d = 4 has length 73 -> 128; counter-chain d = 3 has 133 -> 256). Both variants run
interleaved on the same inputs; the report is the median time, the ratio, and the largest difference of h.

Usage::

    OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE python bench/bench_scan_padding.py [--lengths 21,53,73,133]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

import arena.architectures.mamba as M


def padded(a: torch.Tensor, b: torch.Tensor, reverse: bool = False) -> torch.Tensor:
    """The former scan: identity elements (a = 1, b = 0) appended up to the next power of two."""
    n = b.shape[1]
    m = 1 << max(0, (n - 1).bit_length())
    if m != n:
        a = torch.cat([a, a.new_ones((a.shape[0], m - n, *a.shape[2:]))], 1)
        b = torch.cat([b, b.new_zeros((b.shape[0], m - n, *b.shape[2:]))], 1)
    return M._blelloch_(a, b, reverse)[:, :n]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lengths", default="21,53,73,133")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--d-inner", type=int, default=128)
    ap.add_argument("--d-state", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()
    torch.manual_seed(0)
    chunked = M._scan_owned
    print(f"batch {args.batch}, d_inner {args.d_inner}, d_state {args.d_state}, threads {torch.get_num_threads()}, "
          f"load {os.getloadavg()[0]:.2f}")
    try:
        for n in (int(x) for x in args.lengths.split(",")):
            a0 = torch.rand(args.batch, n, args.d_inner, args.d_state) * 0.9 + 0.1
            b0 = torch.randn(args.batch, n, args.d_inner, args.d_state)
            times: dict[str, list[float]] = {"padded": [], "chunked": []}
            for _ in range(args.repeats):
                for name, scan in (("padded", padded), ("chunked", chunked)):
                    M._scan_owned = scan
                    a, b = a0.clone().requires_grad_(), b0.clone().requires_grad_()
                    t = time.perf_counter()
                    M.scan_parallel(a, b).square().mean().backward()
                    times[name].append(time.perf_counter() - t)
            M._scan_owned = padded
            h_pad = M.scan_parallel(a0, b0)
            M._scan_owned = chunked
            diff = (h_pad - M.scan_parallel(a0, b0)).abs().max().item()
            p, c = statistics.median(times["padded"]), statistics.median(times["chunked"])
            print(f"L={n:4d} (pad to {1 << (n - 1).bit_length():4d}): padded {p * 1e3:7.1f} ms  chunked "
                  f"{c * 1e3:7.1f} ms  ratio {p / c:4.2f}x  max |dh| {diff:.1e}")
    finally:
        M._scan_owned = chunked


if __name__ == "__main__":
    main()
