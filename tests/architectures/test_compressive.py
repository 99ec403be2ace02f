"""Compressive attention: conformance, equivalence to plain attention on short inputs, a naive reference of the
memory schedule, the attention-reconstruction loss trains only f_c, regulariser signs, FLOPs, state, params."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from arena.api import ModelShape
from arena.architectures.compressive import compressive_flops, segment_schedule
from arena.blocks import analytic_flops, analytic_params, build_model
from arena.registry import get_arch
from arena.testing import check_architecture

torch.set_num_threads(1)
SPEC = get_arch("compressive")
TINY = dict(SPEC.presets["tiny"].overrides)  # n_s = n_m = n_cm = 4, c = 2


def cfg(**kw):
    return SPEC.config(**{**TINY, **kw})


@pytest.mark.parametrize("overrides", [{}, {"reg": "entropy", "reg_lambda": 0.1}, {"reg": "kl_recency",
                                        "reg_lambda": 0.1, "pos": "none"}, {"mem_len": 0}, {"cmem_len": 0}])
def test_conformance(overrides):
    results = check_architecture(SPEC, cfg(**overrides))
    failed = [f"{r.name}: {r.detail}" for r in results if not r.ok]
    assert not failed, failed
    assert "step == parallel" in {r.name for r in results}


@pytest.mark.parametrize("pos", ["alibi", "none"])
def test_short_sequence_equals_plain_causal_attention(pos):
    """T <= n_s: no memory exists yet, so the layer is the transformer's attention with the same weights."""
    tr = get_arch("transformer")
    torch.manual_seed(0)
    ca = SPEC.factory(32, 0, SPEC.config(seg_len=16, mem_len=16, cmem_len=8, rate=4, pos=pos)).eval()
    ref = tr.factory(32, 0, tr.config(pos=pos, attn_impl="math")).eval()
    missing, unexpected = ref.load_state_dict(ca.state_dict(), strict=False)
    assert not missing and set(unexpected) == {"compress.weight", "compress.bias"}
    x = torch.randn(2, 16, 32)
    with torch.no_grad():
        for t in (1, 7, 16):
            assert torch.allclose(ca(x[:, :t]), ref(x[:, :t]), atol=1e-6)
    assert ca.extra_metrics()["l0/mass_current"] == pytest.approx(1.0)


def _naive(mod, x):
    """Straight re-derivation for n_s = n_m = n_cm = 4, c = 2, T = 12 (one batch element, ALiBi timestamps)."""
    d, h = mod.d_model, mod.n_heads
    wq, wk, wv = mod.qkv.weight.chunk(3)
    comp = F.conv1d(x[0:4].T[None], mod.compress.weight, mod.compress.bias, stride=2)[0].T  # seg 0 evicted -> 2 rows
    keys_per_seg = {0: (torch.zeros(0, d), []), 1: (x[0:4], [0, 1, 2, 3]),
                    2: (torch.cat([comp, x[4:8]]), [0.5, 2.5, 4, 5, 6, 7])}
    out = []
    for t in range(12):
        s = t // 4
        mem, times = keys_per_seg[s]
        ctx = torch.cat([mem, x[4 * s : t + 1]])
        tk = torch.tensor(times + list(range(4 * s, t + 1)), dtype=torch.float32)
        q, k, v = x[t] @ wq.T, ctx @ wk.T, ctx @ wv.T
        heads = []
        for j in range(h):
            sl = slice(j * mod.d_head, (j + 1) * mod.d_head)
            sc = k[:, sl] @ q[sl] / math.sqrt(mod.d_head) - mod.slopes[j] * (t - tk)
            heads.append(sc.softmax(0) @ v[:, sl])
        out.append(torch.cat(heads) @ mod.out_proj.weight.T)
    return torch.stack(out)


def test_matches_naive_memory_schedule_and_sees_compressed_memory():
    torch.manual_seed(0)
    mod = SPEC.factory(16, 0, cfg()).eval()
    with torch.no_grad():
        mod.compress.weight.add_(0.1 * torch.randn_like(mod.compress.weight))  # not just mean pooling
        mod.compress.bias.normal_()
        x = torch.randn(1, 12, 16)
        y = mod(x)
        assert torch.allclose(y[0], _naive(mod, x[0]), atol=1e-5)
        m = mod.extra_metrics()
        assert m["l0/mass_compressed"] > 0 and m["l0/mass_memory"] > 0
        assert m["l0/mass_compressed"] + m["l0/mass_memory"] + m["l0/mass_current"] == pytest.approx(1.0)
        x2 = x.clone()
        x2[:, 0] += 1.0  # token 0 reaches segment 2 only through the compressed memory
        assert (mod(x2)[:, 8:] - y[:, 8:]).abs().max() > 1e-4


def test_reconstruction_loss_trains_only_the_compressor():
    torch.manual_seed(0)
    mod = SPEC.factory(16, 0, cfg()).train()
    x = torch.randn(2, 12, 16, requires_grad=True)
    y = mod(x)
    assert mod.aux_loss is not None and mod.aux_loss.item() > 0
    mod.aux_loss.backward(retain_graph=True)
    assert mod.compress.weight.grad.abs().sum() > 0 and mod.compress.bias.grad.abs().sum() > 0
    assert mod.qkv.weight.grad is None and mod.out_proj.weight.grad is None and x.grad is None
    mod.zero_grad(set_to_none=True)
    y.pow(2).sum().backward()  # the "LM" path never reaches f_c (compressed memory is detached)
    assert mod.compress.weight.grad is None and mod.qkv.weight.grad.abs().sum() > 0
    m = mod.extra_metrics()
    assert m["l0/ar_loss"] == pytest.approx(mod.aux_loss.item()) and m["l0/ar_rel_err"] > 0


def test_reconstruction_loss_zero_for_lossless_compression():
    mod = SPEC.factory(16, 0, cfg(rate=1)).train()  # c = 1 with the mean-pool init is the identity
    mod(torch.randn(2, 12, 16))
    assert mod.aux_loss.item() == pytest.approx(0.0, abs=1e-10)


@pytest.mark.parametrize("reg,entropy_should", [("entropy", "fall"), ("kl_uniform", "rise")])
def test_regulariser_sign(reg, entropy_should):
    """+lambda R with lambda > 0: the entropy regulariser sharpens, KL-to-uniform (the IB bound) flattens."""
    torch.manual_seed(0)
    mod = SPEC.factory(16, 0, cfg(reg=reg, reg_lambda=1.0, ar_loss=False)).train()
    x = torch.randn(4, 12, 16)
    opt = torch.optim.SGD(mod.parameters(), lr=0.5)
    ents = []
    for _ in range(5):
        opt.zero_grad()
        mod(x)
        ents.append(mod.extra_metrics()["l0/attn_entropy_norm"])
        mod.aux_loss.backward()
        opt.step()
    assert (ents[-1] < ents[0]) if entropy_should == "fall" else (ents[-1] > ents[0])
    assert f"l0/reg_{reg}" in mod.extra_metrics() and mod.extra_metrics()["l0/reg_lambda"] == 1.0


def test_kl_uniform_value():
    mod = SPEC.factory(16, 0, cfg(seg_len=8, mem_len=8, reg="kl_uniform", reg_lambda=1.0, pos="none")).train()
    torch.manual_seed(0)
    x = torch.randn(1, 8, 16)
    mod(x)  # one segment, no memory: query i sees i + 1 keys
    q, k, _ = mod.qkv(x).chunk(3, -1)
    q, k = mod._heads(q), mod._heads(k)
    sc = (q @ k.transpose(-1, -2)) / math.sqrt(mod.d_head)
    a = sc.masked_fill(torch.ones(8, 8).triu(1).bool(), float("-inf")).softmax(-1)
    ent = -(a * a.clamp_min(1e-30).log()).sum(-1)
    expected = (torch.arange(1, 9).float().log() - ent).mean()
    assert mod.aux_loss.item() == pytest.approx(expected.item(), rel=1e-5)


def test_flops_match_counter_and_specs_formula():
    d, t, vocab = 32, 40, 23
    c = SPEC.config(seg_len=8, mem_len=8, cmem_len=8, rate=2)
    shape = ModelShape(vocab_size=vocab, d_model=d, n_layers=2, max_seq_len=t)
    torch.manual_seed(0)
    model = build_model(SPEC, shape, c).eval()
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        model(torch.randint(1, vocab, (1, t)))
    f = analytic_flops(SPEC, shape, c, t)  # whole model: mixers, MLPs, logits
    dense = compressive_flops(d, c, t, dense=True)  # the kernel computes the full score rectangle per segment
    expected = t * (f["matmul"] + 2 * dense["attention"])
    assert abs(fc.get_total_flops() - expected) / expected < 0.02, (fc.get_total_flops(), expected)
    # steady state (long T) approaches SPECS §5: 8d^2 + 2d^2 + 4d (n_s/2 + n_m + n_cm), plus K/V of new CM rows
    big = SPEC.config()
    f = compressive_flops(256, big, 128 * 400)
    specs = 10 * 256**2 + 4 * 256 * (64 + 128 + 64) + 4 * 256**2 / 4
    assert (f["matmul"] + f["attention"]) == pytest.approx(specs, rel=0.01)


def test_schedule_and_state_size():
    c = cfg()
    assert segment_schedule(12, c) == [(4, 0, 0, 0), (4, 4, 0, 4), (4, 4, 2, 0)]
    mod = SPEC.factory(16, 0, c).eval()
    x = torch.randn(2, 23, 16)
    with torch.no_grad():
        state = mod.init_state(2)
        for t in range(23):
            _, state = mod.step(x[:, t], state)
            kv = sum(z.shape[2] for z in (state.k_c, state.k_m, state.k_s)) * 2 * 16
            assert kv == SPEC.state_size(16, c, t + 1)
    assert SPEC.state_size(16, c, 400) == 2 * (4 + 4) * 16  # 2 (n_m + n_cm) d in steady state


@pytest.mark.parametrize("d,layers,rate", [(32, 2, 2), (64, 3, 4)])
def test_param_formula(d, layers, rate):
    c = SPEC.config(rate=rate, seg_len=8, mem_len=8)
    shape = ModelShape(vocab_size=30, d_model=d, n_layers=layers, max_seq_len=32)
    counted = sum(p.numel() for p in build_model(SPEC, shape, c).parameters())
    transformer = 12 * layers * d * d + 7 * layers * d + 30 * d + d
    assert counted == transformer + layers * (rate * d * d + d) == analytic_params(SPEC, shape, c)["total"]


def test_rejects_bad_rate():
    with pytest.raises(ValueError, match="multiples"):
        SPEC.config(seg_len=6, rate=4)
