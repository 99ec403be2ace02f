"""RNNs: the ``rnn`` mixer (lstm/gru/vanilla) and the classic ``rnn-lm`` model: conformance, exact parameter
formulas, analytic matmul FLOPs against FlopCounterMode (GRU, vanilla RNN, and an LSTMCell loop standing in for
nn.LSTM, which the counter does not see)."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from arena.api import ModelShape
from arena.architectures import rnn as R
from arena.architectures import rnn_lm as RL
from arena.blocks import analytic_flops, analytic_params, build_model
from arena.registry import get_arch
from arena.testing import check_architecture

torch.set_num_threads(1)
MIXER, LM = get_arch("rnn"), get_arch("rnn-lm")


def _failed(results):
    return [f"{r.name}: {r.detail}" for r in results if not r.ok]


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_mixer_conformance(cell):
    results = check_architecture(MIXER, R.RNNConfig(cell=cell))
    assert not _failed(results)
    assert "step == parallel" in {r.name for r in results}


@pytest.mark.parametrize("overrides", [{"cell": "lstm"}, {"cell": "gru"}, {"cell": "rnn"},
                                       {"cell": "lstm", "dropout": 0.3}])
def test_lm_conformance(overrides):
    results = check_architecture(LM, RL.RNNLMConfig(**overrides))
    assert not _failed(results)
    assert "step == parallel" in {r.name for r in results}


@pytest.mark.parametrize("cell,per_layer", [("lstm", lambda i, h: 4 * h * (i + h) + 8 * h),
                                            ("gru", lambda i, h: 3 * h * (i + h) + 6 * h),
                                            ("rnn", lambda i, h: h * (i + h) + 2 * h)])
@pytest.mark.parametrize("tied", [True, False])
def test_lm_param_formula_exact(cell, per_layer, tied):
    d, n, v = 24, 3, 17
    shape = ModelShape(vocab_size=v, d_model=d, n_layers=n, max_seq_len=8, tie_embeddings=tied)
    cfg = RL.RNNLMConfig(cell=cell)
    model = build_model(LM, shape, cfg)
    counted = sum(p.numel() for p in model.parameters())
    formula = v * d + n * per_layer(d, d) + (0 if tied else d * v + v)  # SPECS.md §5
    assert counted == formula == analytic_params(LM, shape, cfg)["total"]
    assert analytic_params(LM, shape, cfg)["embedding"] == v * d
    assert R.rnn_params(d, R.RNNConfig(cell=cell)) == per_layer(d, d)


def test_lm_forget_bias_and_tying():
    shape = ModelShape(vocab_size=9, d_model=8, n_layers=2, max_seq_len=8)
    model = RL.RNNLM(shape, RL.RNNLMConfig(forget_bias=1.0))
    for layer in range(2):
        b = model.rnn.get_parameter(f"bias_ih_l{layer}") + model.rnn.get_parameter(f"bias_hh_l{layer}")
        assert torch.allclose(b[8:16], torch.ones(8))  # forget slice (gate order i, f, g, o)
    assert model.head is None
    x = torch.randint(0, 9, (1, 4))
    h, _ = model.rnn(model.embed(x))
    assert torch.allclose(model(x), h @ model.embed.weight.T)


class LSTMCellLoop(nn.Module):
    """The same computation as a one-layer ``nn.LSTM``, written as an ``nn.LSTMCell`` loop (the counter sees it)."""

    def __init__(self, d: int):
        super().__init__()
        self.cell = nn.LSTMCell(d, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = c = x.new_zeros(x.shape[0], self.cell.hidden_size)
        outs = []
        for t in range(x.shape[1]):
            h, c = self.cell(x[:, t], (h, c))
            outs.append(h)
        return torch.stack(outs, 1)


def _counted_per_token(module: nn.Module, x: torch.Tensor) -> float:
    with FlopCounterMode(display=False) as fc, torch.no_grad():
        module(x)
    return fc.get_total_flops() / (x.shape[0] * x.shape[1])


def test_lstm_analytic_matmul_matches_counter_on_lstmcell_loop():
    d, B, T = 48, 3, 10
    torch.manual_seed(0)
    loop, lstm = LSTMCellLoop(d), nn.LSTM(d, d, batch_first=True)
    with torch.no_grad():  # same weights: the loop is nn.LSTM's computation
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(loop.cell, name).copy_(getattr(lstm, f"{name}_l0"))
    x = torch.randn(B, T, d)
    with torch.no_grad():
        assert torch.allclose(loop(x), lstm(x)[0], atol=1e-5)
    counted = _counted_per_token(loop, x)
    analytic = R.rnn_flops(d, R.RNNConfig(cell="lstm"), T)["matmul"]
    assert abs(counted / analytic - 1) < 0.02
    assert counted == analytic  # 8 h (i + h), exactly


@pytest.mark.parametrize("cell", ["gru", "rnn"])
def test_mixer_analytic_matmul_matches_counter(cell):
    d, B, T = 40, 2, 7
    mixer = R.RNNMixer(d, 0, R.RNNConfig(cell=cell))
    counted = _counted_per_token(mixer, torch.randn(B, T, d))
    analytic = R.rnn_flops(d, R.RNNConfig(cell=cell), T)["matmul"]
    assert abs(counted / analytic - 1) < 0.02
    assert counted == analytic


@pytest.mark.parametrize("tied", [True, False])
def test_lm_gru_analytic_matmul_matches_counter(tied):
    shape = ModelShape(vocab_size=29, d_model=32, n_layers=2, max_seq_len=16, tie_embeddings=tied)
    cfg = RL.RNNLMConfig(cell="gru")
    model = build_model(LM, shape, cfg).eval()
    counted = _counted_per_token(model, torch.randint(0, 29, (2, 9)))
    analytic = analytic_flops(LM, shape, cfg, 9)
    assert counted == pytest.approx(analytic["matmul"], rel=1e-9)  # 2 layers x 6 h (i + h) + head 2 D V
    assert analytic["elementwise"] > 0


def test_lm_state_size():
    shape = ModelShape(vocab_size=5, d_model=16, n_layers=3, max_seq_len=8)
    assert RL.rnn_lm_state(shape, RL.RNNLMConfig(cell="lstm"), 100) == 3 * 2 * 16
    assert RL.rnn_lm_state(shape, RL.RNNLMConfig(cell="gru"), 10_000) == 3 * 16
