"""Mamba: seq == pscan == a hand-unrolled example, step == parallel, official names/init, parameter formula and
published sizes (meta device), FLOPs against FlopCounterMode, the cuda backend's error and argument plumbing."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from arena.api import ModelShape
from arena.architectures import mamba as M
from arena.blocks import RMSNorm, analytic_params, build_model
from arena.errors import ArenaError
from arena.registry import get_arch
from arena.testing import check_architecture

torch.set_num_threads(1)
SPEC = get_arch("mamba")


@pytest.mark.parametrize("backend", ["seq", "pscan"])
def test_conformance(backend):
    results = check_architecture(SPEC, M.MambaConfig(backend=backend))
    failed = [f"{r.name}: {r.detail}" for r in results if not r.ok]
    assert not failed, failed
    assert "step == parallel" in {r.name for r in results}


@pytest.mark.parametrize("scan", [M.scan_seq, M.scan_parallel])
def test_scan_hand_example(scan):
    a = torch.tensor([0.5, 0.25, 2.0]).view(1, 3)
    b = torch.tensor([1.0, 2.0, 3.0]).view(1, 3)
    # h0 = 1; h1 = 0.25 * 1 + 2 = 2.25; h2 = 2 * 2.25 + 3 = 7.5
    assert torch.allclose(scan(a, b), torch.tensor([[1.0, 2.25, 7.5]]), atol=1e-6)


def test_selective_scan_hand_unrolled_three_steps():
    """D_in = 2 channels, N = 2 states, L = 3, written out step by step with Python floats."""
    x = [[1.0, -2.0], [0.5, 1.0], [-1.0, 3.0]]  # x[t][c]
    dt = [[0.1, 0.2], [0.3, 0.05], [0.2, 0.4]]  # Δ[t][c]
    A = [[-1.0, -2.0], [-0.5, -3.0]]  # A[c][n]
    Bv = [[1.0, 0.5], [-1.0, 2.0], [0.3, 0.7]]  # B[t][n]
    Cv = [[0.2, -1.0], [1.5, 0.5], [-0.4, 1.0]]  # C[t][n]
    Dv = [0.7, -0.3]
    h = [[0.0, 0.0], [0.0, 0.0]]
    want = []
    for t in range(3):
        row = []
        for c in range(2):
            for n in range(2):
                h[c][n] = math.exp(dt[t][c] * A[c][n]) * h[c][n] + dt[t][c] * Bv[t][n] * x[t][c]
            row.append(sum(Cv[t][n] * h[c][n] for n in range(2)) + Dv[c] * x[t][c])
        want.append(row)
    want_t = torch.tensor([want])
    args = [torch.tensor([x]), torch.tensor([dt]), torch.tensor(A), torch.tensor([Bv]), torch.tensor([Cv]),
            torch.tensor(Dv)]
    ys = {be: M.selective_scan(*args, backend=be) for be in ("seq", "pscan")}
    for be, y in ys.items():
        assert torch.allclose(y, want_t, atol=1e-5), (be, y, want_t)
    assert torch.allclose(ys["seq"], ys["pscan"], atol=1e-5)


@pytest.mark.parametrize("length", [1, 2, 5, 16, 37, 73])
@pytest.mark.parametrize("lo,hi", [(0.1, 1.0), (-0.9, 0.9)], ids=["positive", "signed"])
def test_pscan_equals_seq_values_and_gradients(length, lo, hi):
    """Transitions in (0.1, 1) as Mamba-1's exp(ΔA), or in (-0.9, 0.9) as eigen_range=signed's 2 exp(ΔA) - 1."""
    torch.manual_seed(length)
    a = (torch.rand(2, length, 3, 4) * (hi - lo) + lo).requires_grad_()
    b = torch.randn(2, length, 3, 4, requires_grad=True)
    w = torch.randn(2, length, 3, 4)
    outs, grads = {}, {}
    for name, scan in (("seq", M.scan_seq), ("pscan", M.scan_parallel)):
        h = scan(a, b)
        (h * w).sum().backward()
        outs[name], grads[name] = h.detach(), (a.grad.clone(), b.grad.clone())
        a.grad = b.grad = None
    assert torch.allclose(outs["seq"], outs["pscan"], atol=1e-5)
    for g_seq, g_par in zip(grads["seq"], grads["pscan"], strict=True):
        assert torch.allclose(g_seq, g_par, atol=1e-5)


def test_pscan_gradcheck():
    torch.manual_seed(0)
    a = (torch.rand(1, 6, 2, dtype=torch.float64) * 0.9 + 0.1).requires_grad_()
    b = torch.randn(1, 6, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(M.scan_parallel, (a, b))


def test_mixer_backends_agree_and_step_equals_parallel():
    torch.manual_seed(0)
    mixers = {be: M.MambaMixer(16, 0, M.MambaConfig(backend=be)) for be in ("seq", "pscan")}
    mixers["seq"].load_state_dict(mixers["pscan"].state_dict())
    u = torch.randn(2, 19, 16)
    with torch.no_grad():
        y_seq, y_par = mixers["seq"](u), mixers["pscan"](u)
        m = mixers["pscan"]
        state = m.init_state(2)
        assert state[0].shape == (2, 32, 4) and state[1].shape == (2, 32, 16)  # (B, D_in, K), (B, D_in, N)
        steps = []
        for t in range(u.shape[1]):
            y, state = m.step(u[:, t], state)
            steps.append(y)
    assert torch.allclose(y_seq, y_par, atol=1e-5)
    assert torch.allclose(torch.stack(steps, 1), y_par, atol=1e-5)


def test_official_names_and_init():
    cfg = M.MambaConfig()
    torch.manual_seed(0)
    model = build_model(SPEC, ModelShape(vocab_size=11, d_model=64, n_layers=2, max_seq_len=16), cfg)
    mixer = model.mixers[1]
    names = {n for n, _ in mixer.named_parameters()}
    assert names == {"in_proj.weight", "conv1d.weight", "conv1d.bias", "x_proj.weight", "dt_proj.weight",
                     "dt_proj.bias", "A_log", "D", "out_proj.weight"}
    assert mixer.in_proj.weight.shape == (256, 64) and mixer.conv1d.weight.shape == (128, 1, 4)
    assert mixer.x_proj.weight.shape == (4 + 32, 128) and mixer.dt_proj.weight.shape == (128, 4)
    assert torch.equal(mixer.A_log, torch.log(torch.arange(1, 17.0)).expand(128, 16))
    assert torch.equal(mixer.D, torch.ones(128))
    assert mixer.A_log._no_weight_decay and mixer.D._no_weight_decay
    dt = F.softplus(mixer.dt_proj.bias)  # the Backbone's generic init (zero bias) must have been undone
    assert dt.min() >= 1e-3 * 0.999 and dt.max() <= 0.1 * 1.001 and dt.std() > 0
    bound = 4**-0.5
    w = mixer.dt_proj.weight
    assert w.abs().max() <= bound and w.abs().max() > 0.8 * bound  # U(-R^-1/2, R^-1/2)
    # in_proj/x_proj keep PyTorch's default U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (official), not N(0, 0.02)
    assert mixer.in_proj.weight.abs().max() > 0.1 and mixer.in_proj.weight.abs().max() <= 64**-0.5


def test_same_function_as_mambapy():
    mambapy = pytest.importorskip("mambapy.mamba")
    torch.manual_seed(0)
    ours = M.MambaMixer(32, 0, M.MambaConfig())
    theirs = mambapy.MambaBlock(mambapy.MambaConfig(d_model=32, n_layers=1))
    theirs.load_state_dict(ours.state_dict())  # identical parameter names and shapes
    u = torch.randn(2, 23, 32)
    with torch.no_grad():
        assert torch.allclose(ours(u), theirs(u), atol=1e-5)


@pytest.mark.parametrize("d,n_layers,vocab,overrides", [(64, 2, 50, {}), (48, 3, 13, {"d_state": 8, "d_conv": 3}),
                                                        (40, 1, 7, {"bias": True, "dt_rank": 5})])
def test_param_formula_exact(d, n_layers, vocab, overrides):
    cfg = M.MambaConfig(**overrides)
    block = M.MambaMixer(d, 0, cfg)
    di, n, k, r = 2 * d, cfg.d_state, cfg.d_conv, M.dt_rank_of(d, cfg)
    p_block = 3 * d * di + di * (k + 2 * r + 3 * n + 3) + d  # SPECS.md §5, norm included
    if cfg.bias:
        p_block += 2 * di + d
    counted_block = sum(p.numel() for p in block.parameters()) + sum(p.numel() for p in RMSNorm(d).parameters())
    assert counted_block == p_block == M.mamba_params(d, cfg) + d
    shape = ModelShape(vocab_size=vocab, d_model=d, n_layers=n_layers, max_seq_len=16)
    model = build_model(SPEC, shape, cfg)
    counted = sum(p.numel() for p in model.parameters())
    # the Backbone: embedding + n_layers x (mixer + its RMSNorm) + final RMSNorm, tied head
    assert counted == vocab * d + n_layers * p_block + d == analytic_params(SPEC, shape, cfg)["total"]


@pytest.mark.parametrize("d,n_layers,published", [(768, 24, 129.1e6), (1024, 48, 371.5e6), (2048, 48, 1372e6)])
def test_published_sizes_on_meta_device(d, n_layers, published):
    """Mamba-130M/370M/1.4B: D x blocks + tied vocab 50,280 (already a multiple of 8) -> SPECS.md §5 sizes."""
    vocab = 50280
    assert vocab % 8 == 0
    shape = ModelShape(vocab_size=vocab, d_model=d, n_layers=n_layers, max_seq_len=2048)
    with torch.device("meta"):
        model = build_model(SPEC, shape, M.MambaConfig())
    counted = sum(p.numel() for p in model.parameters())
    assert counted == analytic_params(SPEC, shape, M.MambaConfig())["total"]
    tolerance = 0.05e6 if published < 1e9 else 0.5e6  # published to 4 significant digits
    assert abs(counted - published) <= tolerance, counted
    if d == 768:
        assert counted == 129_135_360  # 24 x 3,771,648 + 50,280 x 768 + 768 (final norm)


def test_flops_matmul_part_matches_flop_counter():
    d, B, L = 64, 2, 64
    cfg = M.MambaConfig()
    mixer = M.MambaMixer(d, 0, cfg)
    with FlopCounterMode(display=False) as fc, torch.no_grad():
        mixer(torch.randn(B, L, d))
    counted = fc.get_total_flops() / (B * L)
    analytic = M.mamba_flops(d, cfg, L)["matmul"]
    di, k = 2 * d, cfg.d_conv
    # the official conv1d pads K-1 on both sides and the output is truncated: the counter sees L+K-1 positions
    assert counted == pytest.approx(analytic + 2 * di * k * (k - 1) / L, rel=1e-9)
    assert abs(counted / analytic - 1) < 0.02


def test_cuda_backend_clean_error_on_cpu():
    if M.torch.cuda.is_available():
        pytest.skip("a GPU is present")
    from arena.kernels import available_kernels

    if available_kernels()["mamba_ssm"]:
        with pytest.raises(ArenaError, match="CUDA device"):
            M.MambaMixer(16, 0, M.MambaConfig(backend="cuda"))(torch.randn(1, 4, 16))
    else:
        with pytest.raises(ArenaError, match="mamba-ssm"):
            M.MambaMixer(16, 0, M.MambaConfig(backend="cuda"))


def _reference_selective_scan_fn(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False,
                                 return_last_state=False):
    """A CPU stand-in with mamba_ssm's selective_scan_fn signature and layouts: u, delta, z (B, D_in, L);
    B, C (B, N, L)."""
    if delta_bias is not None:
        delta = delta + delta_bias[:, None]
    if delta_softplus:
        delta = F.softplus(delta)
    y = M.selective_scan(u.mT, delta.mT, A, B.mT, C.mT, D, backend="seq").mT
    return y * F.silu(z) if z is not None else y


def test_cuda_backend_plumbing_with_mocked_kernel(monkeypatch):
    """Only the kernel is mocked: layouts, fused bias/softplus and the gate must give the pscan result."""
    import arena.kernels

    monkeypatch.setattr(arena.kernels, "load_selective_scan", lambda: _reference_selective_scan_fn)
    monkeypatch.setattr(M, "_require_cuda", lambda x: None)
    torch.manual_seed(0)
    cuda_like = M.MambaMixer(16, 0, M.MambaConfig(backend="cuda"))
    ref = M.MambaMixer(16, 0, M.MambaConfig(backend="pscan"))
    ref.load_state_dict(cuda_like.state_dict())
    u = torch.randn(2, 9, 16)
    with torch.no_grad():
        assert torch.allclose(cuda_like(u), ref(u), atol=1e-5)


def test_available_kernels_reports_every_fast_path():
    from arena.kernels import available_kernels, kernel_reasons

    status = available_kernels()
    assert set(status) == {"cuda", "mamba_ssm", "causal_conv1d", "flash_attn"}
    assert isinstance(status["cuda"], bool)
    reasons = kernel_reasons()
    for name in ("mamba_ssm", "causal_conv1d", "flash_attn"):
        # a version string when importable, False (with the reason) when not
        assert status[name] is False or (isinstance(status[name], str) and status[name] == reasons[name])
        assert reasons[name]
