"""Classic recurrent language model: embedding -> stacked LSTM/GRU/tanh-RNN -> linear head (Zaremba et al. 2014,
arXiv:1409.2329; weight tying: Press & Wolf 2017, arXiv:1608.05859; Inan et al. 2017).

Pure PyTorch (``nn.LSTM``/``nn.GRU``/``nn.RNN`` with ``num_layers = n_layers``; cuDNN on CUDA). Unlike the
``rnn`` mixer, nothing of the shared Backbone is used: no norms, no MLPs, no residuals, so this is the baseline as
the SCAN and LM literature ran it. Hidden size = embedding size = d_model, so the head can be tied to the
embedding (then it has no bias, like the Backbone's); an untied head is ``Linear(d_model, vocab)`` with a bias.

Counts follow PyTorch's two bias vectors per gate block (SPECS.md §5): per layer LSTM 4h(i+h) + 8h, GRU
3h(i+h) + 6h, RNN h(i+h) + 2h. Decoding is O(1) per token through ``step()``.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from pydantic import Field
from torch import nn

from arena.api import ArchConfig, ModelShape, SizePreset, arch_spec

GATES = {"lstm": 4, "gru": 3, "rnn": 1}
ELEMENTWISE = {"lstm": 20, "gru": 15, "rnn": 4}  # per hidden unit per token (SPECS.md §6)


class RNNLMConfig(ArchConfig):
    cell: Literal["lstm", "gru", "rnn"] = Field("lstm", description="recurrent cell. Default: lstm")
    dropout: float = Field(0.0, ge=0.0, lt=1.0, description="dropout on embeddings, between layers and before the "
                           "head (Zaremba et al. used 0.5 at 650 units). Default: 0.0")
    forget_bias: float = Field(1.0, description="initial LSTM forget-gate bias, split over the two bias vectors. "
                               "Default: 1.0")


class RNNLM(nn.Module):
    """Token ids (B, T) -> logits (B, T, V)."""

    def __init__(self, shape: ModelShape, cfg: RNNLMConfig):
        super().__init__()
        self.shape, self.cfg = shape, cfg
        d = shape.d_model
        self.embed = nn.Embedding(shape.vocab_size, d)
        cls = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}[cfg.cell]
        self.rnn = cls(d, d, num_layers=shape.n_layers, batch_first=True,
                       dropout=cfg.dropout if shape.n_layers > 1 else 0.0)
        self.drop = nn.Dropout(cfg.dropout)
        self.head = None if shape.tie_embeddings else nn.Linear(d, shape.vocab_size)
        nn.init.normal_(self.embed.weight, std=0.02)  # the recurrent weights keep PyTorch's U(-1/sqrt(h), 1/sqrt(h))
        if self.head is not None:
            nn.init.normal_(self.head.weight, std=0.02)
            nn.init.zeros_(self.head.bias)
        if cfg.cell == "lstm":
            with torch.no_grad():  # gate order i, f, g, o
                for layer in range(shape.n_layers):
                    for kind in ("ih", "hh"):
                        getattr(self.rnn, f"bias_{kind}_l{layer}")[d : 2 * d].fill_(cfg.forget_bias / 2)

    def _logits(self, h: torch.Tensor) -> torch.Tensor:
        h = self.drop(h)
        return h @ self.embed.weight.T if self.head is None else self.head(h)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        y, _ = self.rnn(self.drop(self.embed(input_ids)))  # (B, T, D)
        return self._logits(y)  # (B, T, V)

    def init_state(self, batch: int) -> Any:
        z = torch.zeros(self.shape.n_layers, batch, self.shape.d_model, device=self.embed.weight.device)
        return (z, z.clone()) if self.cfg.cell == "lstm" else z

    def step(self, tokens: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
        y, state = self.rnn(self.drop(self.embed(tokens)).unsqueeze(1), state)  # (B, 1, D)
        return self._logits(y.squeeze(1)), state  # (B, V)


def _layer_params(cell: str, i: int, h: int) -> int:
    g = GATES[cell]
    return g * h * (i + h) + 2 * g * h


def rnn_lm_params(shape: ModelShape, cfg: RNNLMConfig) -> int:
    d, v = shape.d_model, shape.vocab_size
    head = 0 if shape.tie_embeddings else d * v + v
    return v * d + shape.n_layers * _layer_params(cfg.cell, d, d) + head


def rnn_lm_embedding_params(shape: ModelShape, cfg: RNNLMConfig) -> int:
    return shape.vocab_size * shape.d_model


def rnn_lm_flops(shape: ModelShape, cfg: RNNLMConfig, seq_len: int) -> dict[str, float]:
    """Per token: each layer 2 g h (i + h) matmul + ~(20|15|4) h elementwise; the head 2 D V (+ V bias if untied)."""
    d, n, g = shape.d_model, shape.n_layers, GATES[cfg.cell]
    matmul = n * 2.0 * g * d * (d + d) + 2.0 * d * shape.vocab_size
    elementwise = n * float(ELEMENTWISE[cfg.cell] * d) + (0.0 if shape.tie_embeddings else float(shape.vocab_size))
    return {"matmul": matmul, "elementwise": elementwise}


def rnn_lm_state(shape: ModelShape, cfg: RNNLMConfig, seq_len: int) -> int:
    per_layer = 2 * shape.d_model if cfg.cell == "lstm" else shape.d_model
    return shape.n_layers * per_layer


@arch_spec("rnn-lm", kind="model", config=RNNLMConfig, params=rnn_lm_params, flops=rnn_lm_flops,
           state_size=rnn_lm_state, embedding_params=rnn_lm_embedding_params, family="recurrent", version=1,
           supports_step=True, description="classic LSTM/GRU/RNN language model (embedding -> RNN stack -> head)",
           reference="https://arxiv.org/abs/1409.2329",
           presets={"tiny": SizePreset(32, 2), "small": SizePreset(128, 2), "base": SizePreset(256, 2)})
def build(shape: ModelShape, cfg: RNNLMConfig) -> nn.Module:
    return RNNLM(shape, cfg)


SPEC = build
