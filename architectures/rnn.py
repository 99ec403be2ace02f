"""Recurrent sequence mixers: LSTM (Hochreiter & Schmidhuber 1997), GRU (Cho et al. 2014) and a vanilla tanh RNN.

Pure PyTorch (``nn.LSTM``/``nn.GRU``/``nn.RNN``; cuDNN on CUDA). Placed as the mixer of the shared backbone, with
hidden size = d_model so no projection is needed. Decoding is O(1) per token through ``step()``.

Analytic counts follow PyTorch's convention of two bias vectors per gate block (SPECS.md §5):
LSTM 4h(i+h) + 8h params, GRU 3h(i+h) + 6h, RNN h(i+h) + 2h; forward matmul FLOPs per token are twice the
multiply-adds: 8h(i+h), 6h(i+h), 2h(i+h).
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from pydantic import Field
from torch import nn

from arena.api import ArchConfig, SizePreset, arch_spec

GATES = {"lstm": 4, "gru": 3, "rnn": 1}
# elementwise FLOPs per hidden unit per token (gate nonlinearities, products, bias adds); SPECS.md §6
ELEMENTWISE = {"lstm": 20, "gru": 15, "rnn": 4}


class RNNConfig(ArchConfig):
    cell: Literal["lstm", "gru", "rnn"] = Field("lstm", description="recurrent cell. Default: lstm")
    forget_bias: float = Field(1.0, description="initial LSTM forget-gate bias (Jozefowicz et al. 2015). Default: 1.0")


class RNNMixer(nn.Module):
    """(B, T, D) -> (B, T, D) through one recurrent layer with hidden size D."""

    def __init__(self, d_model: int, layer_idx: int, cfg: RNNConfig):
        super().__init__()
        self.cell = cfg.cell
        self.forget_bias = cfg.forget_bias
        cls = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}[cfg.cell]
        self.rnn = cls(d_model, d_model, batch_first=True)
        self.d_model = d_model

    def reset_parameters_arena(self) -> None:
        if self.cell == "lstm":
            h = self.d_model
            with torch.no_grad():  # gate order i, f, g, o: the forget slice of each bias
                self.rnn.bias_ih_l0[h : 2 * h].fill_(self.forget_bias / 2)
                self.rnn.bias_hh_l0[h : 2 * h].fill_(self.forget_bias / 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y, _ = self.rnn(x)  # (B, T, D)
        return y

    def forward_stacked(self, x: torch.Tensor) -> torch.Tensor:
        """forward() when arena.batched trains several models as one stack (nn.LSTM has no vmap rule). A narrow
        LSTM (d_model <= FUSE_HIDDEN / 4) runs as block-diagonal LSTMs over groups of models
        (:func:`_fused_lstm`); otherwise, and for GRU and tanh-RNN, one ``aten`` call per model."""
        from arena.batched import all_models, per_model

        r = self.rnn
        weights = (r.weight_ih_l0, r.weight_hh_l0, r.bias_ih_l0, r.bias_hh_l0)
        if self.cell == "lstm" and 4 * self.d_model <= FUSE_HIDDEN:
            return all_models(_fused_lstm, x, *weights)
        return per_model(_recurrence(self.cell), x, *weights)

    def init_state(self, batch: int, device: torch.device | str = "cpu") -> Any:
        z = torch.zeros(1, batch, self.d_model, device=device)
        return (z, z.clone()) if self.cell == "lstm" else z

    def step(self, x: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
        y, state = self.rnn(x.unsqueeze(1), state)  # (B, 1, D)
        return y.squeeze(1), state


def _recurrence(cell: str) -> Any:
    """The layer's recurrence as a function of its input and weights (what nn.LSTM/GRU/RNN call)."""
    fn = {"lstm": torch._VF.lstm, "gru": torch._VF.gru, "rnn": torch._VF.rnn_tanh}[cell]

    def run(x: torch.Tensor, *weights: torch.Tensor) -> torch.Tensor:
        h0 = x.new_zeros(1, x.shape[0], weights[1].shape[1])
        hx = (h0, h0) if cell == "lstm" else h0
        return fn(x, hx, list(weights), True, 1, 0.0, torch.is_grad_enabled(), False, True)[0]

    return run


FUSE_HIDDEN = 48  # widest block-diagonal LSTM that beats per-model calls (bench_batched, 1 CPU thread)


def _block_diag(w: torch.Tensor, gates: int) -> torch.Tensor:
    """(G, gates*H, I) weights of G models -> one (gates*G*H, G*I) block-diagonal matrix, gate-major (all models'
    rows of gate 0, then gate 1, ...). Built by ``diag_embed``, whose backward reads the diagonal blocks only:
    each model's gradient comes from its own block."""
    g_models, rows, cols = w.shape
    h = rows // gates
    w4 = w.view(g_models, gates, h, cols).permute(1, 2, 3, 0)  # (gates, H, I, G)
    return torch.diag_embed(w4).permute(0, 3, 1, 4, 2).reshape(gates * g_models * h, g_models * cols)


def _fused_lstm(x: torch.Tensor, w_ih: torch.Tensor, w_hh: torch.Tensor, b_ih: torch.Tensor,
                b_hh: torch.Tensor) -> torch.Tensor:
    """K one-layer LSTMs with their own weights as ONE ``aten::lstm`` call per group of models: a group's hidden
    states sit side by side (model k in channel block k) and its weights form block-diagonal matrices, so the
    zero blocks keep the models apart exactly (0 * finite = 0). ``x`` (K, B, T, I), weights stacked over K ->
    (K, B, T, H). Groups hold up to ``FUSE_HIDDEN // H`` models (wider fused matrices cost more than they save)."""
    k, b, t, i = x.shape
    h = w_hh.shape[2]
    group = max(1, FUSE_HIDDEN // h)
    run = _recurrence("lstm")
    outs = []
    for a in range(0, k, group):
        sl = slice(a, min(k, a + group))
        n = sl.stop - sl.start
        xx = x[sl].permute(1, 2, 0, 3).reshape(b, t, n * i)
        bias = [v[sl].view(n, 4, h).transpose(0, 1).reshape(4 * n * h) for v in (b_ih, b_hh)]
        y = run(xx, _block_diag(w_ih[sl], 4), _block_diag(w_hh[sl], 4), *bias)  # (B, T, n*H)
        outs.append(y.view(b, t, n, h).permute(2, 0, 1, 3))
    return outs[0] if len(outs) == 1 else torch.cat(outs)


def rnn_params(d_model: int, cfg: RNNConfig) -> int:
    g, h = GATES[cfg.cell], d_model
    return g * h * (d_model + h) + 2 * g * h


def rnn_flops(d_model: int, cfg: RNNConfig, seq_len: int) -> dict[str, float]:
    g, h = GATES[cfg.cell], d_model
    return {"matmul": 2.0 * g * h * (d_model + h), "elementwise": float(ELEMENTWISE[cfg.cell] * h)}


def rnn_state(d_model: int, cfg: RNNConfig, seq_len: int) -> int:
    return 2 * d_model if cfg.cell == "lstm" else d_model


@arch_spec("rnn", kind="mixer", config=RNNConfig, params=rnn_params, flops=rnn_flops, state_size=rnn_state,
           family="recurrent", version=1, supports_step=True,
           description="LSTM/GRU/vanilla RNN mixer in the shared backbone (cell=lstm|gru|rnn)",
           reference="https://doi.org/10.1162/neco.1997.9.8.1735",
           presets={"tiny": SizePreset(32, 1), "small": SizePreset(128, 2), "base": SizePreset(256, 2)})
def build(d_model: int, layer_idx: int, cfg: RNNConfig) -> nn.Module:
    return RNNMixer(d_model, layer_idx, cfg)


SPEC = build
