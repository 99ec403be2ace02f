"""Head pruning: physical removal equals masking, all heads kept equals the parent, costs drop by exactly the heads'
share (analytic and counted), importance is Michel et al.'s gradient."""

from __future__ import annotations

import time

import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from arena.api import Example, ModelShape
from arena.blocks import analytic_flops, analytic_params, build_model
from arena.measure.params import count_params
from arena.prune import _gate_hooks, apply_kept, head_importance, kept_after, parse_keep, pruned_copy, removal_order
from arena.registry import get_arch

COMP = {"seg_len": 4, "mem_len": 4, "cmem_len": 4, "rate": 2}
CASES = [("transformer", {"n_heads": 4}), ("transformer", {"n_heads": 4, "pos": "alibi", "bias": True}),
         ("moe", {"n_heads": 4, "n_experts": 2, "top_k": 1}), ("compressive", {"n_heads": 4, **COMP})]


def _model(name, cfg, d=32, layers=2, vocab=19, seed=0):
    spec = get_arch(name)
    torch.manual_seed(seed)
    c = spec.config(**cfg)
    shape = ModelShape(vocab, d, layers, 64)
    return spec, c, shape, build_model(spec, shape, c).eval()


@pytest.mark.parametrize("name,cfg", CASES)
def test_all_heads_kept_equals_parent_and_removal_equals_a_zero_gate(name, cfg):
    _, _, _, model = _model(name, cfg)
    x = torch.randint(1, 19, (2, 13))
    with torch.no_grad():
        ref = model(x)
        assert torch.equal(pruned_copy(model, [[0, 1, 2, 3], [0, 1, 2, 3]])(x), ref)
        kept = [[0, 2], [1, 2, 3]]
        gates = [torch.tensor([1.0, 0.0, 1.0, 0.0]), torch.tensor([0.0, 1.0, 1.0, 1.0])]
        hooks = _gate_hooks(model, gates)
        masked = model(x)
        for h in hooks:
            h.remove()
        pruned = pruned_copy(model, kept)
        assert torch.allclose(pruned(x), masked, atol=1e-5)
        assert not torch.allclose(masked, ref, atol=1e-3)
        # decoding with a KV cache runs on the pruned model too and agrees with its parallel forward
        state, outs = pruned.init_state(2), []
        for t in range(x.shape[1]):
            logits, state = pruned.step(x[:, t], state)
            outs.append(logits)
        assert torch.allclose(torch.stack(outs, 1), pruned(x), atol=1e-4)


@pytest.mark.parametrize("name,cfg", CASES)
def test_params_and_flops_drop_by_the_heads_share(name, cfg):
    """Counted parameters and FlopCounterMode FLOPs of the pruned model drop by exactly (removed heads) x the
    architecture's declared HeadCost; so do the analytic numbers the derived run records."""
    spec, c, shape, model = _model(name, cfg)
    t = 16
    x = torch.ones(1, t, dtype=torch.long)

    def counted(m):
        with torch.no_grad(), sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as fc:
            m(x)
        return fc.get_total_flops()

    removed = 3
    pruned = pruned_copy(model, [[1, 3], [0, 1, 2]])
    per_params = spec.heads.params(shape.d_model, c)
    assert count_params(model) == analytic_params(spec, shape, c)["total"]
    assert count_params(model) - count_params(pruned) == removed * per_params
    head = spec.heads.flops(shape.d_model, c, t)
    if name == "compressive":  # explicit matmuls over each segment's full score rectangle (the dense key count)
        from arena.architectures.compressive import segment_schedule

        sched = segment_schedule(t, c)
        dense = sum(ell * ell + ell * (lm + lc) for ell, lm, lc, _ in sched)
        causal = sum(ell * (ell + 1) / 2 + ell * (lm + lc) for ell, lm, lc, _ in sched)
        expected_drop = removed * t * (head["matmul"] + head["attention"] * dense / causal)
    else:  # SDPA (math backend) computes the full T x T square: 4 d_head T per token per head, not 4 d_head (T+1)/2
        expected_drop = removed * t * (head["matmul"] + head["attention"] * 2 * t / (t + 1))
    assert counted(model) - counted(pruned) == pytest.approx(expected_drop, rel=1e-9)
    from arena.prune_run import pruned_costs

    class Res:
        arch = spec

    params, flops, state = pruned_costs(Res, shape, c, pruned, [[1, 3], [0, 1, 2]], t)
    full = analytic_flops(spec, shape, c, t)
    assert params["total"] == count_params(pruned)
    assert sum(full.values()) - sum(flops.values()) == pytest.approx(removed * sum(head.values()))


def test_latency_drops_when_heads_are_removed():
    """Keeping 1 of 8 heads cuts an attention-heavy forward (T = 512, d = 64) to well under its full time. The
    analytic FLOP ratio is 0.47; the bound is 0.75 on the minimum CPU time (process time, so other processes on a
    shared machine do not count) of interleaved repeats."""
    spec, c, shape, model = _model("transformer", {"n_heads": 8}, d=64, layers=2, vocab=11)
    pruned = pruned_copy(model, [[0], [0]])
    full = sum(analytic_flops(spec, shape, c, 512).values())
    head = sum(spec.heads.flops(64, c, 512).values())
    assert (full - 14 * head) / full == pytest.approx(0.47, abs=0.01)
    x = torch.randint(1, 11, (2, 512))
    times = {"full": [], "pruned": []}
    with torch.no_grad():
        for _ in range(2):
            model(x), pruned(x)
        for _ in range(7):
            for key, m in (("full", model), ("pruned", pruned)):
                t0 = time.process_time()
                m(x)
                times[key].append(time.process_time() - t0)
    assert min(times["pruned"]) < 0.75 * min(times["full"]), times


def test_importance_is_the_gate_gradient():
    """I_h = |dL/dxi_h| (one batch), checked against central finite differences of the loss in each gate, then
    l2-normalised per layer."""
    _, _, _, model = _model("transformer", {"n_heads": 4})
    model.double()  # finite differences of the loss need more than float32's 7 digits
    torch.manual_seed(1)
    exs = [Example(tokens=tuple(torch.randint(1, 19, (10,)).tolist()), mask=(True,) * 9) for _ in range(8)]
    imp = head_importance(model, exs, batch_size=8)
    from arena.evaluate import collate

    x, y = collate(exs)

    def loss(gates):
        hooks = _gate_hooks(model, gates)
        with torch.no_grad():
            out = model(x)
        for h in hooks:
            h.remove()
        return torch.nn.functional.cross_entropy(out.reshape(-1, 19), y.reshape(-1), ignore_index=-100)

    eps = 1e-5
    for li in range(2):
        fd = []
        for h in range(4):
            up = [torch.ones(4, dtype=torch.double) for _ in range(2)]
            dn = [torch.ones(4, dtype=torch.double) for _ in range(2)]
            up[li][h] += eps
            dn[li][h] -= eps
            fd.append(abs(float(loss(up) - loss(dn))) / (2 * eps))
        fd = torch.tensor(fd, dtype=torch.double)
        assert torch.allclose(imp[li].double(), fd / fd.norm(), atol=1e-4), (imp[li], fd / fd.norm())


def test_a_dead_head_is_ranked_first_and_random_is_seeded():
    _, _, _, model = _model("transformer", {"n_heads": 4})
    with torch.no_grad():
        model.mixers[1].out_proj.weight[:, 8:16] = 0.0  # layer 1, head 1 contributes nothing
    exs = [Example(tokens=tuple(range(1, 12)), mask=(True,) * 10)] * 4
    for method in ("importance", "magnitude"):
        order, info = removal_order(model, method, exs)
        assert order[0] == (1, 1), (method, order)
        assert sorted(order) == [(li, h) for li in range(2) for h in range(4)]
    a, _ = removal_order(model, "random", seed=3)
    b, _ = removal_order(model, "random", seed=3)
    c, _ = removal_order(model, "random", seed=4)
    assert a == b and a != c
    assert kept_after(a, [4, 4], 8) == [[0, 1, 2, 3]] * 2 and sum(map(len, kept_after(a, [4, 4], 3))) == 3


def test_every_head_of_a_layer_can_go():
    """A layer pruned to no heads adds nothing (no bias) and still decodes."""
    _, _, _, model = _model("transformer", {"n_heads": 2})
    x = torch.randint(1, 19, (1, 7))
    apply_kept(model, [[], [1]])
    assert model.mixers[0].n_heads == 0 and model.mixers[0].qkv.weight.numel() == 0
    with torch.no_grad():
        assert torch.isfinite(model(x)).all()


def test_parse_keep_errors():
    from arena.errors import ArenaError

    assert parse_keep("12, 8,4", 16) == [12, 8, 4]
    for bad, msg in (("17", "outside 0..16"), ("a", "comma-separated"), ("", "comma-separated")):
        with pytest.raises(ArenaError, match=msg):
            parse_keep(bad, 16)
