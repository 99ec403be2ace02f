"""The attention-capture contract: what a mixer shows equals what its fast (SDPA) path computes."""

from __future__ import annotations

import math

import pytest
import torch

from arena.analyze import capture_layers
from arena.api import AttentionCapturable, ModelShape
from arena.architectures.transformer import apply_rope, causal_bias, rope_cos_sin
from arena.blocks import build_model
from arena.registry import ARCHS, get_arch

COMP = {"seg_len": 4, "mem_len": 4, "cmem_len": 4, "rate": 2}
CASES = [("transformer", {"n_heads": 4}), ("transformer", {"n_heads": 4, "pos": "alibi", "bias": True}),
         ("transformer", {"n_heads": 2, "pos": "none"}), ("moe", {"n_heads": 4, "n_experts": 2, "top_k": 1}),
         ("compressive", {"n_heads": 4, **COMP})]


def _model(name, cfg, d=32, layers=2, vocab=19, seed=0):
    spec = get_arch(name)
    torch.manual_seed(seed)
    return build_model(spec, ModelShape(vocab, d, layers, 64), spec.config(**cfg)).eval()


def _mixer_inputs(model, x):
    inputs = {}
    hooks = [m.register_forward_pre_hook(lambda mod, a, i=i: inputs.__setitem__(i, a[0]))
             for i, m in enumerate(model.mixers)]
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    return inputs


@pytest.mark.parametrize("name,cfg", CASES)
def test_capture_projects_to_the_fast_forward(name, cfg):
    """out_proj(concat heads of the capture) equals the mixer's own forward (SDPA for transformer/moe); every
    probability row sums to 1 over the visible keys and is 0 on the others."""
    model = _model(name, cfg)
    x = torch.randint(1, 19, (3, 11))
    caps, inputs = capture_layers(model, x), _mixer_inputs(model, x)
    assert all(isinstance(m, AttentionCapturable) for m in model.mixers)
    for i, cap in enumerate(caps):
        b, h, t, dh = cap.head_outputs.shape
        assert (b, h, t) == (3, cfg["n_heads"], 11) and cap.probs.shape[:3] == (3, h, 11)
        with torch.no_grad():
            fast = model.mixers[i](inputs[i])
        assert torch.allclose(cap.out_proj(cap.head_outputs.transpose(1, 2).reshape(b, t, h * dh)), fast, atol=1e-6)
        assert torch.allclose(cap.probs.sum(-1), torch.ones(b, h, t), atol=1e-5)
        assert float((cap.probs * ~cap.visible).abs().max()) == 0.0
        assert cap.uniform_outputs is not None and cap.uniform_outputs.shape == cap.head_outputs.shape


@pytest.mark.parametrize("pos", ["rope", "alibi", "none"])
def test_transformer_capture_equals_explicit_attention(pos):
    """Probabilities recomputed here from the layer's weights (softmax(QK^T / sqrt(d_h) + bias), causal) equal the
    capture's, and so do the head outputs and the uniform-attention outputs (causal mean of V)."""
    model = _model("transformer", {"n_heads": 4, "pos": pos})
    x = torch.randint(1, 19, (2, 9))
    mixer, inp = model.mixers[1], _mixer_inputs(model, x)[1]
    cap = mixer.capture_attention(inp)
    with torch.no_grad():
        q, k, v = mixer.qkv(inp).view(2, 9, 3, 4, 8).permute(2, 0, 3, 1, 4)
        pos_ids = torch.arange(9)
        if pos == "rope":
            cos, sin = rope_cos_sin(pos_ids, 8, 10000.0)
            q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        scores = q @ k.transpose(-1, -2) / math.sqrt(8)
        if pos == "alibi":
            scores = scores + causal_bias(pos_ids, pos_ids, mixer.slopes)
        scores = scores.masked_fill(~torch.ones(9, 9, dtype=torch.bool).tril(), float("-inf"))
        probs = scores.softmax(-1)
        uniform = torch.stack([v[:, :, : t + 1].mean(2) for t in range(9)], 2)
    assert torch.allclose(cap.probs, probs, atol=1e-6)
    assert torch.allclose(cap.head_outputs, probs @ v, atol=1e-6)
    assert torch.allclose(cap.uniform_outputs, uniform, atol=1e-6)
    assert torch.equal(cap.offsets, (pos_ids[:, None] - pos_ids[None, :]).float())


def test_compressive_within_one_segment_equals_transformer_alibi():
    """With T <= seg_len there is no memory: the compressive capture is the ALiBi transformer's, weight for weight."""
    comp = _model("compressive", {"n_heads": 4, "seg_len": 16, "mem_len": 16, "cmem_len": 4, "rate": 4}, layers=1)
    tf = _model("transformer", {"n_heads": 4, "pos": "alibi"}, layers=1)
    tf.mixers[0].qkv.weight.data.copy_(comp.mixers[0].qkv.weight.data)
    x = torch.randn(2, 12, 32)
    a, b = comp.mixers[0].capture_attention(x), tf.mixers[0].capture_attention(x)
    assert torch.allclose(a.probs, b.probs, atol=1e-6) and torch.allclose(a.head_outputs, b.head_outputs, atol=1e-6)


def test_compressive_capture_sees_its_memory():
    """Past one segment, queries see compressed and FIFO memory slots, each with its distance back in tokens."""
    model = _model("compressive", {"n_heads": 2, **COMP}, layers=1)
    cap = model.mixers[0].capture_attention(torch.randn(1, 16, 32))
    n_vis = cap.visible.sum(-1)
    assert n_vis[0] == 1 and n_vis[3] == 4  # first segment: causal only
    assert int(n_vis[12]) == 4 + 4 + 1  # segment 4: 4 memory rows + 4 compressed rows (2 evictions of 4 -> 2 each)
    assert float(cap.offsets[cap.visible].min()) == 0.0 and float(cap.offsets[12][cap.visible[12]].max()) > 4


def test_capture_declared_where_implemented():
    """Every registered architecture that declares capture (or heads) builds mixers implementing it."""
    for name in ARCHS.names():
        spec = get_arch(name)
        if spec.captures_attention or spec.heads is not None:
            assert spec.kind == "mixer", name
    assert {n for n in ARCHS.names() if get_arch(n).captures_attention} >= {"transformer", "moe", "compressive"}
