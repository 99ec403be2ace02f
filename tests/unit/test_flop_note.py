"""The FLOP counter note flags a disagreement only when no known blind spot of the counter explains it."""

from __future__ import annotations

import pytest
import torch

from arena.api import ModelShape
from arena.blocks import build_model
from arena.measure.flops import explain_disagreement, measure_flops
from arena.registry import get_arch

torch.set_num_threads(1)


@pytest.mark.parametrize("arch,cfg", [("rnn", {}), ("transformer", {"n_heads": 2}), ("mamba", {})])
def test_ordinary_architectures_have_explained_or_no_disagreement(arch, cfg):
    spec = get_arch(arch)
    arch_cfg = spec.config(**cfg)
    shape = ModelShape(vocab_size=24, d_model=32, n_layers=2, max_seq_len=64, pad_id=0)
    model = build_model(spec, shape, arch_cfg)
    out = measure_flops(spec, shape, arch_cfg, model, seq_len=20, tokens_seen=0)
    assert "DISAGREEMENT" not in out["note"], out["note"]
    if arch == "rnn":
        assert "expected: FlopCounterMode does not count LSTM" in out["note"]
    if arch == "transformer":
        assert "full T x T attention square" in out["note"]


def test_an_analytic_error_is_still_flagged():
    spec = get_arch("transformer")
    arch_cfg = spec.config(n_heads=2)
    shape = ModelShape(vocab_size=24, d_model=32, n_layers=2, max_seq_len=64, pad_id=0)
    model = build_model(spec, shape, arch_cfg)
    honest = measure_flops(spec, shape, arch_cfg, model, seq_len=20, tokens_seen=0)
    counted = honest["counted_forward_per_example"]
    wrong = {k: v / 20 for k, v in honest["breakdown"].items()}
    wrong["matmul"] *= 0.5  # a formula that forgot half of the projections
    assert explain_disagreement(wrong, 20, counted, model) is None
    # and an LSTM-free model counted short has no excuse either
    assert explain_disagreement({"matmul": 2 * counted / 20}, 20, counted, model) is None
