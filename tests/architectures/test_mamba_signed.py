"""mamba ``eigen_range='signed'``: Ā = 2 exp(ΔA) - 1 in (-1, 1) instead of exp(ΔA) in (0, 1).

The same scans (seq, pscan, step) must agree with negative transitions (pscan = seq with transitions in
(-0.9, 0.9): tests/architectures/test_mamba.py), the option must change the function, the
default must keep the hash of runs made before the field existed, and the fused CUDA kernel is refused."""

from __future__ import annotations

import math

import pytest
import torch

from arena.architectures import mamba as M
from arena.registry import get_arch
from arena.spec import RunSpec, run_config
from arena.testing import check_architecture

torch.set_num_threads(1)


def test_signed_selective_scan_hand_unrolled():
    """One channel, one state, L = 4; Δ large enough that Ā < 0 on two steps (the state flips sign)."""
    x, dt, a, bv, cv, d = [1.0, 0.5, -1.0, 2.0], [0.1, 2.0, 0.05, 1.5], -1.0, [1.0, -0.5, 2.0, 0.3], \
        [0.4, 1.0, -2.0, 0.5], 0.2
    h, want, flips = 0.0, [], 0
    for t in range(4):
        abar = 2 * math.exp(dt[t] * a) - 1
        flips += abar < 0
        h = abar * h + dt[t] * bv[t] * x[t]
        want.append(cv[t] * h + d * x[t])
    assert flips == 2
    args = [torch.tensor(x).view(1, 4, 1), torch.tensor(dt).view(1, 4, 1), torch.tensor([[a]]),
            torch.tensor(bv).view(1, 4, 1), torch.tensor(cv).view(1, 4, 1), torch.tensor([d])]
    for backend in ("seq", "pscan"):
        y = M.selective_scan(*args, backend=backend, signed=True).view(4)
        assert torch.allclose(y, torch.tensor(want), atol=1e-6), (backend, y, want)
    unsigned = M.selective_scan(*args, backend="seq").view(4)
    assert not torch.allclose(unsigned, torch.tensor(want), atol=1e-2)


def test_signed_mixer_step_equals_parallel_and_differs_from_positive():
    torch.manual_seed(0)
    cfgs = {r: M.MambaConfig(eigen_range=r) for r in ("positive", "signed")}
    mixers = {r: M.MambaMixer(16, 0, c) for r, c in cfgs.items()}
    mixers["positive"].load_state_dict(mixers["signed"].state_dict())
    with torch.no_grad():
        mixers["signed"].dt_proj.bias.fill_(1.0)  # Δ ~ 1.3: exp(ΔA) < 1/2 on most states, so Ā < 0 there
        mixers["positive"].dt_proj.bias.fill_(1.0)
    u = torch.randn(2, 23, 16)
    m = mixers["signed"]
    with torch.no_grad():
        y_par = m(u)
        state, steps = m.init_state(2), []
        for t in range(u.shape[1]):
            y, state = m.step(u[:, t], state)
            steps.append(y)
        y_pos = mixers["positive"](u)
    assert torch.allclose(torch.stack(steps, 1), y_par, atol=1e-5)
    assert (y_par - y_pos).abs().max() > 1e-2


def test_signed_conformance():
    results = check_architecture(get_arch("mamba"), M.MambaConfig(eigen_range="signed"))
    failed = [f"{r.name}: {r.detail}" for r in results if not r.ok]
    assert not failed, failed


def test_default_keeps_the_hash_of_runs_made_before_the_field():
    from arena.runner import prepare

    spec = RunSpec(arch="mamba", task="nested-parity", d_model=32, n_layers=2, seed=0)
    res = prepare(spec, [])
    assert res.config["arch_config"]["eigen_range"] == "positive"  # stored for provenance
    old = {k: v for k, v in res.config["arch_config"].items() if k != "eigen_range"}  # the dump before the field
    _, old_hash = run_config(res.spec, old, res.config["task_config"], res.shape, res.config["split"],
                             res.arch.version, res.task_spec.version)
    assert res.config_hash == old_hash
    signed = prepare(spec, ["arch.eigen_range=signed"])
    assert signed.config_hash != res.config_hash


def test_signed_with_the_cuda_kernel_is_refused_naming_the_field():
    with pytest.raises(ValueError, match="eigen_range"):
        M.MambaConfig(eigen_range="signed", backend="cuda")


def test_signed_flops_count_the_affine_map():
    pos, sig = (M.mamba_flops(32, M.MambaConfig(eigen_range=r), 64) for r in ("positive", "signed"))
    di, n = 64, 16
    assert sig["scan"] - pos["scan"] == 2 * di * n
    assert sig["matmul"] == pos["matmul"]
