"""Training throughput and model-FLOP utilisation (MFU) of every registered architecture, in one run.

For each architecture (``arena.registry.ARCHS.names()``, task-specific models and CUDA-only ones skipped) a model
is built at the same backbone size (default d_model 256, 2 layers, vocabulary 256, its ``base`` preset's config
overrides) and timed on full training steps (forward, cross-entropy + auxiliary losses, backward, AdamW) at
batch 32 x sequence 256. Achieved FLOP/s = 3 x analytic forward FLOPs per token (``arena.blocks.analytic_flops``;
backward ~ 2 x forward) x tokens/s. The peak is this machine's fp32 matmul rate, measured in the same script with
large ``torch.mm`` calls (best of several, before and after the models); MFU = achieved / peak.

Timing uses the process CPU time (``time.process_time``) by default, for both the peak and the models: on a
shared, oversubscribed machine wall time measures the other tenants, CPU time measures this process (run with one
thread, ``OMP_NUM_THREADS=1``, where the two agree on a quiet machine). ``--clock wall`` uses wall time instead.

Analytic FLOPs count useful work (causal halves of attention, active experts only), so dense kernels that compute
the masked half, or training-only extras (the compressive model's reconstruction loss) make MFU look lower, never
higher.

Usage::

    OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE python bench/bench_mfu.py [--archs transformer,moe] [--steps 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from arena.api import ModelShape
from arena.blocks import analytic_flops, analytic_params, build_model, collect_aux_loss
from arena.registry import ARCHS, get_arch

CLOCK = time.process_time


def matmul_peak(n: int = 2048, repeats: int = 5, onednn: bool = False) -> float:
    """Best fp32 FLOP/s of an n x n x n ``torch.mm`` (or oneDNN's fp32 GEMM) with the current thread count."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    if onednn:  # the oneDNN kernel nn.LSTM and conv use; on AMD CPUs it runs AVX-512 where MKL's sgemm runs AVX2
        try:
            am, bm = a.to_mkldnn(), b.to_mkldnn()
            fn = lambda: torch._C._nn.mkldnn_linear(am, bm)  # noqa: E731
            fn()
        except Exception:
            return float("nan")
    else:
        fn = lambda: torch.mm(a, b)  # noqa: E731
    fn()  # warm-up
    best = 0.0
    for _ in range(repeats):
        t0 = CLOCK()
        fn()
        best = max(best, 2.0 * n**3 / (CLOCK() - t0))
    return best


def bench_arch(name: str, d_model: int, n_layers: int, seq_len: int, batch: int, vocab: int, steps: int,
               warmup: int) -> dict[str, float | str]:
    spec = get_arch(name)
    preset = spec.presets.get("base") if spec.presets else None
    cfg = spec.config(**(dict(preset.overrides) if preset else {}))
    shape = ModelShape(vocab_size=vocab, d_model=d_model, n_layers=n_layers, max_seq_len=seq_len)
    torch.manual_seed(0)
    model = build_model(spec, shape, cfg).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    x = torch.randint(1, vocab, (batch, seq_len + 1))
    inp, tgt = x[:, :-1], x[:, 1:]

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        logits = model(inp)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), tgt.reshape(-1))
        (loss + collect_aux_loss(model)).backward()
        opt.step()

    for _ in range(warmup):
        step()
    times, walls = [], []
    for _ in range(steps):
        t0, w0 = CLOCK(), time.perf_counter()
        step()
        times.append(CLOCK() - t0)
        walls.append(time.perf_counter() - w0)
    sec = statistics.median(times)
    fwd = analytic_flops(spec, shape, cfg, seq_len)
    per_token = sum(fwd.values()) if fwd else float("nan")
    tokens = batch * seq_len
    params = analytic_params(spec, shape, cfg)
    return {"arch": name, "params": params["total"], "active": params["active"], "step_s": sec, "wall_s": statistics.median(walls),
            "tok_s": tokens / sec, "train_gflop_step": 3 * per_token * tokens / 1e9,
            "flops_s": 3 * per_token * tokens / sec}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--archs", default="", help="comma-separated names (default: every registered architecture)")
    ap.add_argument("--d-model", type=int, default=256)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--seq-len", type=int, default=256)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--vocab", type=int, default=256)
    ap.add_argument("--steps", type=int, default=3, help="timed training steps per architecture (median)")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--clock", choices=["cpu", "wall"], default="cpu", help="process CPU time or wall time")
    args = ap.parse_args()
    global CLOCK
    CLOCK = time.process_time if args.clock == "cpu" else time.perf_counter
    names = [n for n in args.archs.split(",") if n] or ARCHS.names()
    cuda = torch.cuda.is_available()

    peak, peak_dnn = matmul_peak(), matmul_peak(onednn=True)
    print(f"threads={torch.get_num_threads()} d_model={args.d_model} layers={args.layers} seq={args.seq_len} "
          f"batch={args.batch} vocab={args.vocab} steps={args.steps} (median) clock={args.clock} "
          f"torch={torch.__version__}")
    rows, skipped = [], []
    for name in names:
        spec = get_arch(name)
        if spec.task_specific or ("cuda" in spec.requires and not cuda):
            skipped.append(name)
            continue
        try:
            rows.append(bench_arch(name, args.d_model, args.layers, args.seq_len, args.batch, args.vocab,
                                   args.steps, args.warmup))
        except Exception as exc:  # one broken architecture must not hide the others' numbers
            rows.append({"arch": name, "error": f"{type(exc).__name__}: {exc}"})
        print(f"  done {name}", flush=True)
    peak = max(peak, matmul_peak())  # the machine is shared: take the best of before and after
    peak_dnn = max(peak_dnn, matmul_peak(onednn=True))
    print(f"\nfp32 matmul peak, 2048^3 torch.mm (MKL; what nn.Linear uses), best of 10: {peak / 1e9:.1f} GFLOP/s")
    print(f"fp32 GEMM peak, 2048^3 oneDNN (mkldnn_linear), best of 10: {peak_dnn / 1e9:.1f} GFLOP/s")
    print("MFU = achieved / torch.mm peak; 'MFU oneDNN' = achieved / oneDNN peak\n")
    print(f"| {'arch':<14} | {'params':>10} | {'active':>10} | {'step s':>7} | {'wall s':>7} | {'tokens/s':>9} | "
          f"{'train GFLOP/step':>16} | {'GFLOP/s':>8} | {'MFU':>6} | {'MFU oneDNN':>10} |")
    print("|" + "|".join("-" * w for w in (16, 12, 12, 9, 9, 11, 18, 10, 8, 12)) + "|")
    for r in rows:
        if "error" in r:
            print(f"| {r['arch']:<14} | error: {r['error']} |")
            continue
        print(f"| {r['arch']:<14} | {r['params']:>10,} | {r['active']:>10,} | {r['step_s']:>7.2f} | {r['wall_s']:>7.2f} | "
              f"{r['tok_s']:>9,.0f} | {r['train_gflop_step']:>16.1f} | {r['flops_s'] / 1e9:>8.1f} | "
              f"{r['flops_s'] / peak:>6.1%} | {r['flops_s'] / peak_dnn:>10.1%} |")
    if skipped:
        print(f"\nskipped (task-specific or CUDA-only): {', '.join(skipped)}")


if __name__ == "__main__":
    main()
