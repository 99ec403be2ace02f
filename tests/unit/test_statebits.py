"""State in bits: quantising the carried state per channel, and the smallest b that keeps the score."""

from __future__ import annotations

import pytest
import torch

from arena.blocks import analytic_state_size
from arena.evaluate import evaluate_examples
from arena.runner import build_for, prepare
from arena.spec import RunSpec
from arena.statebits import BITS, Quantizer, _decode, _layout, _score, _tensors, measure_state_bits
from arena.train import train


def _trained(arch: str, steps: int = 60):
    cfg = {"n_heads": 2} if arch == "transformer" else {}
    res = prepare(RunSpec(arch=arch, task="recall-depth", split="iid", d_model=16, n_layers=1, seed=0, arch_config=cfg,
                          task_config={"depth": 1, "n_train": 256, "n_val": 32, "n_test": 32, "vocab_size": 16}),
                  [f"train.max_steps={steps}", "train.eval_every=1000", "train.lr=1e-2"])
    model = build_for(res)
    train(model, res.task, res.spec.train, 0)
    return model.eval(), res


@pytest.mark.parametrize("arch,layout", [("rnn", [(1, None), (1, None)]), ("mamba", [(0, None), (0, None)]),
                                         ("transformer", [(0, 2), (0, 2)])])
def test_state_layout_is_probed_and_unquantised_decoding_equals_the_parallel_score(arch, layout):
    model, res = _trained(arch)
    test = res.task.splits["test"]
    x = torch.tensor([test[0].tokens[:-1]])
    assert _layout(model, x) == layout
    stepwise = _score(res.task, _decode(model, test, 16, None, 32))
    parallel = evaluate_examples(model, res.task, test, 16)["metrics"][res.task.metric]
    assert stepwise == pytest.approx(parallel, abs=1 / 64)


def test_quantiser_rounds_each_channel_to_its_calibrated_grid():
    q = Quantizer([(0, None)])
    calib = torch.tensor([[0.0, -1.0], [2.0, 3.0]])  # channel 0 in [0, 2], channel 1 in [-1, 3]
    q.observe(calib)
    x = torch.tensor([[0.4, 1.5], [1.9, -5.0]])
    one = q.apply(x, 1)
    assert one.tolist() == [[0.0, 3.0], [2.0, -1.0]]  # 1 bit: each channel's min or max (clamped outside)
    two = q.apply(x, 2)  # levels at lo + k * span / 3
    assert two[0, 0].item() == pytest.approx(2 / 3) and two[1, 1].item() == pytest.approx(-1.0)
    assert torch.equal(q.apply(x, 32), x)
    assert torch.equal(q.apply(q.apply(x, 4), 4), q.apply(x, 4))  # idempotent: a KV cache is re-quantised safely


def test_measure_state_bits_reports_the_smallest_b_within_one_point():
    model, res = _trained("rnn", steps=80)
    size = analytic_state_size(res.arch, res.shape, res.arch_cfg, res.task.max_seq_len - 1)
    out = measure_state_bits(model, res.task, size)
    b = out["bits_per_float"]
    assert b in BITS and out["state_bits"] == b * size == b * 2 * 16
    ref, scores = out["reference_score"], out["scores_by_bits"]
    assert scores[b] >= ref - 0.01
    assert all(scores[c] < ref - 0.01 for c in scores if c < b)  # every smaller width tried fell short
    assert len(_tensors(model.init_state(3))) == 2
