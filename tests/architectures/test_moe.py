"""The MoE transformer: conformance, total/active params, routing rules, balance loss, overflow log, FLOPs."""

from __future__ import annotations

import math

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from arena.api import ModelShape
from arena.architectures.moe import MoEFFN
from arena.blocks import analytic_flops, analytic_params, build_model, collect_aux_loss
from arena.registry import get_arch
from arena.testing import check_architecture

torch.set_num_threads(1)
SPEC = get_arch("moe")


@pytest.mark.parametrize("overrides", [{}, {"n_experts": 4, "top_k": 1, "z_loss": 1e-3}])
def test_conformance(overrides):
    cfg = SPEC.config(**{**SPEC.presets["tiny"].overrides, **overrides})
    failed = [f"{r.name}: {r.detail}" for r in check_architecture(SPEC, cfg) if not r.ok]
    assert not failed, failed


@pytest.mark.parametrize("d,layers,e,k", [(32, 2, 4, 1), (64, 3, 8, 2)])
def test_total_and_active_params(d, layers, e, k):
    cfg = SPEC.config(n_experts=e, top_k=k)
    shape = ModelShape(vocab_size=50, d_model=d, n_layers=layers, max_seq_len=32)
    model = build_model(SPEC, shape, cfg)
    counted = sum(p.numel() for p in model.parameters())
    declared = analytic_params(SPEC, shape, cfg)
    assert declared["total"] == counted
    expert = sum(p.numel() for p in model.channels[0].experts[0].parameters())
    assert expert == 2 * d * 4 * d + 4 * d + d
    non_expert = counted - sum(p.numel() for c in model.channels for p in c.experts.parameters())
    assert declared["active"] == non_expert + layers * k * expert  # k experts + router + everything else
    assert declared["total"] - declared["active"] == layers * (e - k) * expert


def _balanced_ffn(k: int, e: int = 4) -> tuple[MoEFFN, torch.Tensor]:
    """Router = 10 x identity; inputs e_j (k=1) or e_j + e_(j+1) (k=2) cycling over j: perfectly balanced."""
    cfg = SPEC.config(n_experts=e, top_k=k, aux_alpha=0.01)
    ffn = MoEFFN(e, 8, 0, cfg).train()
    with torch.no_grad():
        ffn.router.weight.copy_(10 * torch.eye(e))
    eye = torch.eye(e) if k == 1 else torch.eye(e) + torch.eye(e).roll(1, 1)
    x = eye.repeat(6, 1).reshape(2, 3 * e, e)
    return ffn, x


@pytest.mark.parametrize("k", [1, 2])
def test_balance_loss_equals_alpha_at_perfect_balance(k):
    ffn, x = _balanced_ffn(k)
    ffn(x)
    assert ffn.aux_loss.item() == pytest.approx(0.01, rel=1e-6)
    m = ffn.extra_metrics()
    assert all(m[f"l0/moe_f_{j}"] == pytest.approx(0.25) for j in range(4))
    assert m["l0/moe_overflow_frac"] == 0.0 and m["l0/moe_unused_experts"] == 0.0


def test_collapsed_routing_loss_and_overflow():
    cfg = SPEC.config(n_experts=4, top_k=1, aux_alpha=0.01)
    ffn = MoEFFN(4, 8, 3, cfg).train()
    with torch.no_grad():
        ffn.router.weight.zero_()
        ffn.router.weight[0].fill_(20.0)
    x = torch.rand(1, 40, 4) + 0.5  # every token goes to expert 0 with p ~ 1
    ffn(x)
    p0 = ffn.extra_metrics()["l3/moe_p_0"]
    assert ffn.aux_loss.item() == pytest.approx(0.01 * 4 * 1.0 * p0, rel=1e-5) and p0 > 0.99
    cap = math.ceil(1.25 * 40 / 4)
    assert ffn.extra_metrics()["l3/moe_overflow_frac"] == pytest.approx((40 - cap) / 40)
    ffn.aux_loss.backward()
    assert ffn.router.weight.grad.abs().sum() > 0  # the balance loss trains the router


def test_gates_switch_and_mixtral():
    torch.manual_seed(0)
    x = torch.randn(7, 16)
    for k in (1, 2):
        ffn = MoEFFN(16, 32, 0, SPEC.config(n_experts=4, top_k=k)).eval()
        z, p, idx, gates = ffn.route(x)
        if k == 1:  # Switch: the gate is the router probability itself
            assert torch.allclose(gates[:, 0], p.max(-1).values)
        else:  # Mixtral: softmax over the top-k logits
            assert torch.allclose(gates, z.gather(1, idx).softmax(-1), atol=1e-6)
        with torch.no_grad():
            manual = torch.stack([sum(gates[t, s] * ffn.experts[int(idx[t, s])](x[t]) for s in range(k))
                                  for t in range(7)])
            assert torch.allclose(ffn(x), manual, atol=1e-6)
        assert z.dtype == torch.float32


def test_routing_deterministic_and_per_token():
    torch.manual_seed(0)
    ffn = MoEFFN(16, 32, 0, SPEC.config(n_experts=8, top_k=2)).eval()
    x = torch.randn(50, 16)
    a, b, c = ffn.route(x)[2], ffn.route(x)[2], ffn.route(x[:20])[2]
    assert torch.equal(a, b) and torch.equal(a[:20], c)
    with torch.no_grad():
        assert torch.equal(ffn(x), ffn(x))


def test_flops_match_counter():
    """Dropless routing computes exactly k experts per token: analytic matmul FLOPs equal FlopCounterMode."""
    t, d, vocab = 32, 32, 41
    cfg = SPEC.config(n_experts=4, top_k=2, attn_impl="math")
    shape = ModelShape(vocab_size=vocab, d_model=d, n_layers=2, max_seq_len=t)
    torch.manual_seed(0)
    model = build_model(SPEC, shape, cfg).eval()
    x = torch.randint(1, vocab, (1, t))
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        model(x)
    f = analytic_flops(SPEC, shape, cfg, t)
    expected = t * (f["matmul"] + f["attention"] * 2 * t / (t + 1))  # dense score square, see test_transformer
    assert abs(fc.get_total_flops() - expected) / expected < 0.02
    # FLOPs follow active params: k=2 of 8 experts costs the same as k=2 of 4
    f8 = analytic_flops(SPEC, shape, SPEC.config(n_experts=8, top_k=2), t)
    assert f8["matmul"] - f["matmul"] == pytest.approx(2 * 2 * d * 4)  # only the router grows (2 D dE per layer)


def test_aux_loss_collected_in_training_only():
    cfg = SPEC.config(**SPEC.presets["tiny"].overrides)
    model = build_model(SPEC, ModelShape(vocab_size=20, d_model=32, n_layers=2, max_seq_len=16), cfg).train()
    model(torch.randint(1, 20, (2, 10)))
    aux = collect_aux_loss(model)
    per_layer = [c.extra_metrics()[f"l{i}/moe_balance_loss"] for i, c in enumerate(model.channels)]
    assert aux.item() == pytest.approx(sum(per_layer), rel=1e-5) and aux.item() > 0
    model.eval()
    model(torch.randint(1, 20, (2, 10)))
    assert collect_aux_loss(model).item() == 0.0
