"""The plugin's contract tests: arena's public conformance suite, plus checks of this mixer's own claims."""

import torch
from arena_plugin_example.gla import SPEC, GLAConfig, GLAMixer, gla_params

from arena.testing import assert_conforms, check_architecture


def test_conforms_from_the_spec_object():
    assert_conforms(SPEC)


def test_conforms_through_the_entry_point():
    # after `pip install`, arena finds the plugin by name through the arena.architectures entry point
    results = check_architecture("gla-mini")
    assert {r.name for r in results} >= {"shape", "causality", "step == parallel", "param count"}
    assert all(r.ok for r in results), [r for r in results if not r.ok]


def test_chunk_size_does_not_change_the_output():
    # the chunkwise parallel form is exact: any chunk size gives the same function as the recurrence
    torch.manual_seed(0)
    x = torch.randn(2, 37, 64)
    ref = GLAMixer(64, 0, GLAConfig(chunk_size=1))
    for c in (4, 16, 64):
        m = GLAMixer(64, 0, GLAConfig(chunk_size=c))
        m.load_state_dict(ref.state_dict())
        assert torch.allclose(m(x), ref(x), atol=1e-5), c


def test_declared_params_match_at_other_widths():
    for d, cfg in ((48, GLAConfig(n_heads=3)), (128, GLAConfig(n_heads=4, expand_k=1.0, gate_rank=8))):
        m = GLAMixer(d, 0, cfg)
        assert sum(p.numel() for p in m.parameters()) == gla_params(d, cfg)
