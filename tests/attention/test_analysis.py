"""Attention statistics: hand-built attention with known entropy and rank, and the log_attention training hook."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from arena.analyze import analyze_examples
from arena.api import AttentionCapture, Example
from arena.attention_stats import attention_sums, effective_rank


def test_effective_rank_of_known_spectra():
    """A matrix with r equal singular values has erank r; with spectrum (3, 1) erank is exp(H(3/4, 1/4)), and
    n90 counts the values holding 90 % of the energy (9 / 10 needs one value, 99 % needs two)."""
    torch.manual_seed(0)
    u, _ = torch.linalg.qr(torch.cat([torch.ones(200, 1), torch.randn(200, 199)], 1).double())
    v, _ = torch.linalg.qr(torch.randn(16, 16).double())
    u = u[:, 1:]  # orthogonal to the all-ones vector, so subtracting the token mean changes nothing
    for r in (1, 3, 7, 16):
        m = u[:, :16] @ torch.diag(torch.tensor([2.0] * r + [0.0] * (16 - r), dtype=torch.double)) @ v.T
        got = effective_rank(m)
        assert got["erank"] == pytest.approx(r, rel=1e-9) and got["bound"] == 16
        assert got["n90"] == math.ceil(0.9 * r) and got["n99"] == r  # equal values: ceil(q r) of them
    got = effective_rank(u[:, :2] @ torch.diag(torch.tensor([3.0, 1.0], dtype=torch.double)) @ v[:2])
    assert got["erank"] == pytest.approx(math.exp(-(0.75 * math.log(0.75) + 0.25 * math.log(0.25))), rel=1e-9)
    assert (got["n90"], got["n99"]) == (1, 2)
    const = torch.ones(50, 8) * 3.0  # a constant output has no variation left after the mean: rank 0
    assert effective_rank(const)["erank"] == 0.0


def test_attention_sums_of_known_patterns():
    """Head 0 attends only to the previous token (entropy 0, offset 1); head 1 splits evenly over the previous two
    (entropy log 2); head 2 is uniform (normalised entropy 1, offset t/2); padded queries are not counted."""
    t = 6
    vis = torch.ones(t, t, dtype=torch.bool).tril()
    off = (torch.arange(t)[:, None] - torch.arange(t)[None, :]).float()
    p = torch.zeros(1, 3, t, t)
    for q in range(t):
        p[0, 0, q, max(q - 1, 0)] = 1.0
        p[0, 1, q, max(q - 1, 0)] += 0.5
        p[0, 1, q, q] += 0.5
        p[0, 2, q, : q + 1] = 1.0 / (q + 1)
    mask = torch.tensor([[True] * 5 + [False]])  # the last position is padding
    sums, n = attention_sums(p, vis, off, mask)
    assert int(n) == 4  # queries 1..4 see >= 2 keys; query 0 sees one, query 5 is padding
    mean = {k: v / 4 for k, v in sums.items()}
    qs = range(1, 5)
    assert mean["entropy_norm"][0] == pytest.approx(0.0, abs=1e-6)
    assert mean["entropy_norm"][1] == pytest.approx(sum(math.log(2) / math.log(q + 1) for q in qs) / 4, rel=1e-5)
    assert mean["entropy_norm"][2] == pytest.approx(1.0, rel=1e-5)
    assert mean["support"].tolist() == pytest.approx([1.0, 2.0, sum(q + 1 for q in qs) / 4], rel=1e-5)
    assert mean["top1"].tolist() == pytest.approx([1.0, 0.5, sum(1 / (q + 1) for q in qs) / 4], rel=1e-5)
    assert mean["offset"].tolist() == pytest.approx([1.0, 0.5, sum(q / 2 for q in qs) / 4], rel=1e-5)


class HandMixer(nn.Module):
    """A mixer with fixed, known attention: head 0 looks one token back, head 1 attends uniformly. Values are the
    one-hot of (token id mod d_head), so head 0's outputs span exactly d_head directions (rank d_head)."""

    def __init__(self, d_model: int = 8, n_heads: int = 2):
        super().__init__()
        self.n_heads, self.d_head = n_heads, d_model // n_heads
        self.out_proj = nn.Linear(d_model, d_model, bias=False)
        self.ids: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def capture_attention(self, x: torch.Tensor) -> AttentionCapture:
        b, t, _ = x.shape
        vis = torch.ones(t, t, dtype=torch.bool).tril()
        prev = torch.zeros(t, t)
        prev[torch.arange(t), (torch.arange(t) - 1).clamp(min=0)] = 1.0
        uni = vis.float() / vis.sum(-1, keepdim=True)
        probs = torch.stack([prev, uni])[None].expand(b, -1, -1, -1)
        vals = nn.functional.one_hot(self.ids % self.d_head, self.d_head).float()[:, None].expand(-1, 2, -1, -1)
        return AttentionCapture(probs=probs, head_outputs=probs @ vals, out_proj=self.out_proj, visible=vis,
                                offsets=(torch.arange(t)[:, None] - torch.arange(t)[None, :]).float(),
                                uniform_outputs=uni @ vals)


class HandModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.mixers = nn.ModuleList([HandMixer()])
        self.emb = nn.Embedding(20, 8)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        self.mixers[0].ids = ids
        return self.mixers[0](self.emb(ids))


def test_analysis_of_a_hand_built_attention_returns_its_known_statistics():
    torch.manual_seed(0)
    examples = [Example(tokens=tuple(torch.randint(1, 20, (17,)).tolist()), mask=(True,) * 16) for _ in range(40)]
    rep = analyze_examples(HandModel(), examples, batch_size=16)
    h0, h1 = rep["layers"][0]["heads"]
    assert h0["entropy_norm"] == pytest.approx(0.0, abs=1e-6) and h0["top1"] == pytest.approx(1.0)
    assert h0["offset"] == pytest.approx(1.0) and h0["support"] == pytest.approx(1.0)
    assert h1["entropy_norm"] == pytest.approx(1.0, rel=1e-5)
    assert h1["offset"] == pytest.approx(sum(t / 2 for t in range(1, 16)) / 15, rel=1e-6)  # uniform: t/2 back
    # head 0 outputs one-hot rows of 4 classes drawn about evenly; rows sum to 1, so once the token mean is
    # subtracted they span 3 directions: rank 3 of the bound 4, erank just under 3
    assert h0["n99"] == 3 and h0["bound"] == 4 and 2.7 < h0["erank"] <= 3.0
    # head 1 averages them: after the mean is removed the variation shrinks as 1/t but spans all 4 directions
    assert h1["erank"] < h0["erank"]
    layer = rep["layers"][0]["layer"]
    assert layer["bound"] == 8 and layer["entropy_norm"] == pytest.approx(0.5, abs=1e-5)
    assert rep["layers"][0]["uniform"]["entropy_norm"] == pytest.approx(1.0, rel=1e-5)
    assert rep["n_queries"] == 40 * 15 and rep["n_rows"] == 40 * 16


@pytest.mark.parametrize("arch,cfg", [("transformer", {"n_heads": 2}),
                                      ("compressive", {"n_heads": 2, "seg_len": 4, "mem_len": 4, "cmem_len": 4,
                                                       "rate": 2})])
def test_log_attention_records_curves_without_changing_training(arch, cfg):
    """train.log_attention adds per-head statistics at step 0 (= the initialised model) and every eval; the weights
    after training are bit-identical to a run without it."""
    from arena.analyze import compact
    from arena.blocks import build_model
    from arena.runner import prepare
    from arena.spec import RunSpec
    from arena.train import ATTENTION_PROBE_EXAMPLES, train

    spec = RunSpec(arch=arch, task="mqar", size="tiny", arch_config=cfg,
                   task_config={"n_train": 64, "n_val": 16, "n_test": 16, "seq_len": 16, "num_kv_pairs": 2})
    finals, curves = [], []
    for log in (False, True):
        res = prepare(spec, ["train.max_steps=6", "train.eval_every=3", "train.batch_size=4", "train.warmup_steps=1",
                             f"train.log_attention={str(log).lower()}"])
        torch.manual_seed(0)
        model = build_model(res.arch, res.shape, res.arch_cfg)
        init_report = analyze_examples(model, res.task.analysis_examples("val", ATTENTION_PROBE_EXAMPLES))
        state = train(model, res.task, res.spec.train, 0)
        finals.append({k: v.clone() for k, v in model.state_dict().items()})
        curves.append(state.attention_curve)
    assert curves[0] == []
    assert [p["step"] for p in curves[1]] == [0, 3, 6]
    assert curves[1][0]["layers"] == compact(init_report)["layers"]
    assert all(torch.equal(finals[0][k], finals[1][k]) for k in finals[0])
