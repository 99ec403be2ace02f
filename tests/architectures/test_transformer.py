"""The transformer mixer: conformance, exact parameter formula, FLOPs against FlopCounterMode, positions, KV cache."""

from __future__ import annotations

import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from arena.api import ModelShape
from arena.blocks import analytic_flops, analytic_params, build_model
from arena.registry import get_arch
from arena.testing import check_architecture

torch.set_num_threads(1)
SPEC = get_arch("transformer")


@pytest.mark.parametrize("overrides", [{}, {"pos": "alibi"}, {"pos": "none", "attn_impl": "math"},
                                       {"pos": "alibi", "attn_impl": "math", "bias": True}])
def test_conformance(overrides):
    results = check_architecture(SPEC, SPEC.config(**overrides))
    failed = [f"{r.name}: {r.detail}" for r in results if not r.ok]
    assert not failed, failed
    assert "step == parallel" in {r.name for r in results}


@pytest.mark.parametrize("d,layers,heads,vocab,bias", [
    (64, 2, 4, 100, False), (96, 3, 3, 50, True),
    pytest.param(768, 12, 12, 50257, False, marks=pytest.mark.slow)])  # meta-device init costs ~10 s once
def test_param_formula_exact(d, layers, heads, vocab, bias):
    """Whole model: 12 L D^2 + 7 L D + V D + D without attention biases (+4 L D with them), tied embeddings."""
    cfg = SPEC.config(n_heads=heads, bias=bias)
    shape = ModelShape(vocab_size=vocab, d_model=d, n_layers=layers, max_seq_len=64)
    with torch.device("meta" if d >= 768 else "cpu"):
        model = build_model(SPEC, shape, cfg)
    counted = sum(p.numel() for p in model.parameters())
    formula = 12 * layers * d * d + (11 if bias else 7) * layers * d + vocab * d + d
    assert counted == formula == analytic_params(SPEC, shape, cfg)["total"]
    if (d, layers, bias) == (768, 12, False):
        # GPT-2 small (124,439,808) minus learned positions (1024 x 768), attention biases (12 x 4 x 768) and
        # LayerNorm biases (25 x 768): the RMSNorm, RoPE, bias-free-attention layout here
        assert counted == 124_439_808 - 1024 * 768 - 12 * 4 * 768 - 25 * 768


def _count(model, x, math_backend: bool) -> int:
    with FlopCounterMode(display=False) as fc:
        if math_backend:
            with sdpa_kernel(SDPBackend.MATH):
                model(x)
        else:
            model(x)
    return fc.get_total_flops()


@pytest.mark.parametrize("impl,pos", [("math", "rope"), ("sdpa", "none"), ("sdpa", "alibi")])
def test_flops_match_counter(impl, pos):
    """Analytic matmul + attention FLOPs of the whole model equal FlopCounterMode within 2 %.

    The dense kernels compute the whole T x T score square (4 D T per token per layer); the analytic attention
    term counts the causal half, 4 D (T+1)/2, so the comparison scales it by 2T/(T+1).
    """
    t, d, layers, vocab = 64, 64, 2, 97
    cfg = SPEC.config(pos=pos, attn_impl=impl)
    shape = ModelShape(vocab_size=vocab, d_model=d, n_layers=layers, max_seq_len=t)
    torch.manual_seed(0)
    model = build_model(SPEC, shape, cfg).eval()
    x = torch.randint(1, vocab, (1, t))
    with torch.no_grad():
        counted = _count(model, x, math_backend=(impl == "sdpa"))
    f = analytic_flops(SPEC, shape, cfg, t)
    expected = t * (f["matmul"] + f["attention"] * 2 * t / (t + 1))
    assert abs(counted - expected) / expected < 0.02, (counted, expected)
    # per mixer: the attention term is the Kaplan context term 2 * n_ctx * d at n_ctx = T + 1
    per = SPEC.flops(d, cfg, t)
    assert per["attention"] == pytest.approx(2 * (t + 1) * d) and per["matmul"] == 8 * d * d


def test_sdpa_equals_math_and_metrics():
    torch.manual_seed(0)
    x = torch.randn(2, 10, 32)
    for pos in ("rope", "alibi", "none"):
        a = SPEC.factory(32, 0, SPEC.config(pos=pos)).eval()
        b = SPEC.factory(32, 0, SPEC.config(pos=pos, attn_impl="math")).eval()
        b.load_state_dict(a.state_dict())
        with torch.no_grad():
            assert torch.allclose(a(x), b(x), atol=1e-5)
    m = b.extra_metrics()
    assert set(m) == {"l0/attn_entropy_norm", "l0/attn_max_logit"}
    assert 0.0 < m["l0/attn_entropy_norm"] <= 1.0


def test_alibi_slopes():
    from arena.architectures.transformer import alibi_slopes

    assert torch.allclose(alibi_slopes(8), torch.tensor([2.0 ** -(i + 1) for i in range(8)]))
    s6 = alibi_slopes(6)  # 4 from the power-of-two table, then every other slope of the 8-head table
    assert torch.allclose(s6, torch.tensor([2 ** -2, 2 ** -4, 2 ** -6, 2 ** -8, 2 ** -1, 2 ** -3]))


def test_rope_is_relative():
    from arena.architectures.transformer import apply_rope, rope_cos_sin

    torch.manual_seed(0)
    q, k = torch.randn(1, 1, 1, 16), torch.randn(1, 1, 1, 16)

    def score(m: int, n: int) -> float:
        cq, sq = rope_cos_sin(torch.tensor([m]), 16, 10000.0)
        ck, sk = rope_cos_sin(torch.tensor([n]), 16, 10000.0)
        return float((apply_rope(q, cq, sq) * apply_rope(k, ck, sk)).sum())

    assert score(7, 3) == pytest.approx(score(107, 103), abs=1e-4)
    assert score(7, 3) != pytest.approx(score(7, 5), abs=1e-3)


@pytest.mark.parametrize("pos", ["rope", "alibi", "none"])
def test_kv_cache_matches_forward_and_state_size(pos):
    cfg = SPEC.config(pos=pos, n_heads=2)
    mixer = SPEC.factory(16, 0, cfg).eval()
    torch.manual_seed(1)
    x = torch.randn(3, 9, 16)
    with torch.no_grad():
        full = mixer(x)
        state = mixer.init_state(3)
        outs = []
        for t in range(9):
            y, state = mixer.step(x[:, t], state)
            outs.append(y)
    assert torch.allclose(full, torch.stack(outs, 1), atol=1e-5)
    assert sum(s.numel() for s in state) // 3 == SPEC.state_size(16, cfg, 9)


def test_rejects_indivisible_heads():
    with pytest.raises(ValueError, match="divisible"):
        SPEC.factory(30, 0, SPEC.config(n_heads=4))
