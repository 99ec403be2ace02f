"""Conformance suite over EVERY registered architecture (timm-style): a new entry is tested with no new test."""

from __future__ import annotations

import pytest

from arena.registry import ARCHS
from arena.testing import check_architecture


@pytest.mark.parametrize("name", ARCHS.names())
def test_conformance(name):
    results = check_architecture(name)
    failed = [f"{r.name}: {r.detail}" for r in results if not r.ok]
    assert results, "no checks ran"
    assert not failed, "; ".join(failed)


def test_conformance_catches_a_peeking_model():
    """The causality check must be able to fail: a mixer that averages over the whole sequence."""
    from dataclasses import replace

    import torch
    from torch import nn

    from arena.registry import get_arch

    class Peek(nn.Module):
        def __init__(self, d, i, cfg):
            super().__init__()
            self.lin = nn.Linear(d, d)

        def forward(self, x):
            return self.lin(x.mean(1, keepdim=True).expand_as(x))

    rnn = get_arch("rnn")
    spec = replace(rnn, name="peek", factory=Peek, params=lambda d, c: d * d + d, supports_step=False)
    by_name = {r.name: r for r in check_architecture(spec)}
    assert not by_name["causality"].ok and "peeks ahead" in by_name["causality"].detail
    assert by_name["param count"].ok
    lying = replace(spec, params=lambda d, c: d * d)
    assert not {r.name: r for r in check_architecture(lying)}["param count"].ok
    _ = torch
