"""Conformance checks for architectures: the public contract tests our suite and plugin authors both run.

``check_architecture(name_or_spec)`` returns one :class:`CheckResult` per check; ``arena validate NAME`` prints them
and exits 0 only when all pass. Checks (DESIGN.md §3): config round-trip, output shape, finite outputs, a
gradient on every parameter, causality, ``step()`` equals the parallel forward (when declared), reported
parameter count equals the counted one, determinism under a seed, FLOPs and state size declared; when declared,
attention capture (the capture's heads, projected, equal the forward) and head pruning (all heads kept = same model;
removed heads cost what ``HeadCost`` says).
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from dataclasses import dataclass

import torch

from arena.api import ArchConfig, ArchSpec, ModelShape
from arena.blocks import analytic_flops, analytic_params, analytic_state_size, build_model, collect_aux_loss

VOCAB, SEQ, BATCH = 11, 12, 2


@dataclass
class CheckResult:
    name: str
    ok: bool
    detail: str = ""


def conformance_setup(spec: ArchSpec, cfg: ArchConfig | None = None) -> tuple[ModelShape, ArchConfig]:
    preset = spec.presets.get("tiny") if spec.presets else None
    d_model, n_layers = (preset.d_model, preset.n_layers) if preset else (32, 1)
    overrides = dict(preset.overrides) if preset else {}
    cfg = cfg or spec.config(**overrides)
    shape = ModelShape(vocab_size=VOCAB, d_model=d_model, n_layers=max(1, min(n_layers, 2)), max_seq_len=SEQ + 4)
    return shape, cfg


def _build(spec: ArchSpec, shape: ModelShape, cfg: ArchConfig, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_model(spec, shape, cfg).eval()


@dataclass
class _Subject:
    """What every check looks at: the spec, its tiny shape and config, one input batch, and the built model."""

    spec: ArchSpec
    shape: ModelShape
    cfg: ArchConfig
    x: torch.Tensor
    atol: float
    model: torch.nn.Module | None = None


def _config_roundtrip(s: _Subject) -> str:
    again = s.spec.config.model_validate_json(s.cfg.model_dump_json())
    assert again == s.cfg, "config does not survive a JSON round-trip"
    return "config JSON round-trips"


def _build_check(s: _Subject) -> str:
    s.model = _build(s.spec, s.shape, s.cfg)
    return f"{type(s.model).__name__} built"


def _output_shape(s: _Subject) -> str:
    y = s.model(s.x)
    assert tuple(y.shape) == (BATCH, SEQ, VOCAB), f"expected logits of shape {(BATCH, SEQ, VOCAB)}, got {tuple(y.shape)}"
    assert y.dtype.is_floating_point, f"logits dtype {y.dtype} is not floating point"
    return f"{tuple(y.shape)}"


def _finite(s: _Subject) -> str:
    assert torch.isfinite(s.model(s.x)).all(), "output has NaN or Inf"
    return "all finite"


def _gradients(s: _Subject) -> str:
    m, x = s.model.train(), s.x
    m.zero_grad(set_to_none=True)
    y = m(x)
    loss = torch.nn.functional.cross_entropy(y.reshape(-1, VOCAB), x.roll(-1, 1).reshape(-1))
    (loss + collect_aux_loss(m)).backward()
    missing = [n for n, p in m.named_parameters() if p.requires_grad and (p.grad is None or not torch.isfinite(p.grad).all())]
    zero = [n for n, p in m.named_parameters() if p.grad is not None and p.grad.abs().sum() == 0]
    m.eval()
    assert not missing, f"no (finite) gradient for: {', '.join(missing[:5])}"
    assert not zero, f"gradient is identically zero for: {', '.join(zero[:5])}"
    return f"{sum(1 for _ in m.parameters())} tensors"


def _causality(s: _Subject) -> str:
    m, x = s.model, s.x
    t = SEQ // 2
    x2 = x.clone()
    x2[:, t + 1 :] = (x2[:, t + 1 :] % (VOCAB - 1)) + 1  # change every token after t
    x2[:, t + 1 :] = torch.where(x2[:, t + 1 :] == x[:, t + 1 :], (x2[:, t + 1 :] % (VOCAB - 1)) + 1, x2[:, t + 1 :])
    with torch.no_grad():
        a, b = m(x)[:, : t + 1], m(x2)[:, : t + 1]
    diff = (a - b).abs().max().item()
    assert diff <= s.atol, f"logits at positions <= {t} change by {diff:.3g} when later tokens change (peeks ahead)"
    return f"max change {diff:.1e}"


def _step_equals_parallel(s: _Subject) -> str:
    m, x = s.model, s.x
    with torch.no_grad():
        full = m(x)
        state = m.init_state(BATCH)
        outs = []
        for t in range(SEQ):
            logits, state = m.step(x[:, t], state)
            outs.append(logits)
        stepped = torch.stack(outs, 1)
    diff = (full - stepped).abs().max().item()
    assert diff <= 10 * s.atol, f"step() differs from the parallel forward by {diff:.3g}"
    return f"max diff {diff:.1e}"


def _param_count(s: _Subject) -> str:
    counted = sum(p.numel() for p in s.model.parameters())
    declared = analytic_params(s.spec, s.shape, s.cfg)["total"]
    assert counted == declared, f"declared {declared:,} parameters but the module has {counted:,}"
    return f"{counted:,}"


def _determinism(s: _Subject) -> str:
    a, b = _build(s.spec, s.shape, s.cfg, seed=1), _build(s.spec, s.shape, s.cfg, seed=1)
    with torch.no_grad():
        diff = (a(s.x) - b(s.x)).abs().max().item()
    assert diff == 0.0, f"two builds with the same seed differ by {diff:.3g}"
    return "identical"


def _flops_declared(s: _Subject) -> str:
    f = analytic_flops(s.spec, s.shape, s.cfg, SEQ)
    assert f is not None and all(v >= 0 for v in f.values()), f"FLOPs not declared or negative: {f}"
    assert sum(f.values()) > 0, "declared FLOPs are zero"
    size = analytic_state_size(s.spec, s.shape, s.cfg, SEQ)
    assert isinstance(size, int) and size >= 0, f"state size must be a non-negative int, got {size!r}"
    return f"{sum(f.values()):,.0f} FLOPs/token, state {size:,}"


def _attention_capture(s: _Subject) -> str:
    from arena.analyze import capture_layers

    m, x = s.model, s.x
    inputs: dict[int, torch.Tensor] = {}
    hooks = [mx.register_forward_pre_hook(lambda mod, a, i=i: inputs.__setitem__(i, a[0]))
             for i, mx in enumerate(m.mixers)]
    with torch.no_grad():
        m(x)
    for h in hooks:
        h.remove()
    worst = 0.0
    for i, cap in enumerate(capture_layers(m, x)):
        b, n_heads, t, dh = cap.head_outputs.shape
        assert cap.probs.shape[:3] == (b, n_heads, t), f"layer {i}: probs shape {tuple(cap.probs.shape)}"
        assert torch.allclose(cap.probs.sum(-1), torch.ones(()), atol=1e-4), f"layer {i}: rows do not sum to 1"
        assert float((cap.probs * ~cap.visible).abs().max()) == 0.0, f"layer {i}: mass on invisible keys"
        if cap.out_proj is not None:
            with torch.no_grad():
                fast = m.mixers[i](inputs[i])
                shown = cap.out_proj(cap.head_outputs.transpose(1, 2).reshape(b, t, n_heads * dh))
            worst = max(worst, float((fast - shown).abs().max()))
    assert worst <= s.atol, f"capture's projected head outputs differ from the mixer's forward by {worst:.3g}"
    return f"max diff {worst:.1e}"


def _head_pruning(s: _Subject) -> str:
    import copy

    m, x = s.model, s.x
    full = copy.deepcopy(m)
    for mx in full.mixers:
        mx.prune_heads(list(range(mx.n_heads)))
    half = copy.deepcopy(m)
    removed = 0
    for mx in half.mixers:
        keep = list(range(0, mx.n_heads, 2))
        removed += mx.n_heads - len(keep)
        mx.prune_heads(keep)
    with torch.no_grad():
        assert torch.equal(full(x), m(x)), "keeping every head changes the outputs"
        assert torch.isfinite(half(x)).all(), "a pruned model gives non-finite outputs"
    drop = sum(p.numel() for p in m.parameters()) - sum(p.numel() for p in half.parameters())
    per_head = s.spec.heads.params(s.shape.d_model, s.cfg)
    assert drop == removed * per_head, (
        f"removing {removed} heads removed {drop:,} parameters, HeadCost says {removed} x {per_head:,}")
    return f"{removed} heads removed, {drop:,} parameters"


# (name, check, applies to the spec?) in the order they run; the model-free checks come first
CHECKS: list[tuple[str, Callable[[_Subject], str], Callable[[ArchSpec], bool]]] = [
    ("shape", _output_shape, lambda spec: True),
    ("finite", _finite, lambda spec: True),
    ("gradients", _gradients, lambda spec: True),
    ("causality", _causality, lambda spec: spec.causal),
    ("step == parallel", _step_equals_parallel, lambda spec: spec.supports_step),
    ("attention capture", _attention_capture, lambda spec: spec.captures_attention),
    ("head pruning", _head_pruning, lambda spec: spec.heads is not None),
    ("param count", _param_count, lambda spec: True),
    ("determinism", _determinism, lambda spec: True),
    ("flops declared", _flops_declared, lambda spec: True),
]


def _run_check(name: str, fn: Callable[[_Subject], str | None], subject: _Subject) -> CheckResult:
    try:
        return CheckResult(name, True, fn(subject) or "")
    except AssertionError as exc:
        return CheckResult(name, False, str(exc))
    except Exception as exc:  # a crash is a failed check, with where it happened
        tb = traceback.extract_tb(exc.__traceback__)[-1]
        return CheckResult(name, False, f"{type(exc).__name__}: {exc} (at {tb.filename}:{tb.lineno})")


def check_architecture(spec: ArchSpec | str, cfg: ArchConfig | None = None, atol: float = 1e-4) -> list[CheckResult]:
    """Run every conformance check; never raises (a crash in one check is that check's failure)."""
    if isinstance(spec, str):
        from arena.registry import get_arch

        spec = get_arch(spec)
    try:
        shape, cfg = conformance_setup(spec, cfg)
    except Exception as exc:
        return [CheckResult("config", False, f"default config does not build: {exc}")]
    if spec.task_specific:
        return [CheckResult("task-specific", True, "task-specific model: generic checks n/a; checked by its own tests")]
    torch.manual_seed(0)
    subject = _Subject(spec, shape, cfg, torch.randint(1, VOCAB, (BATCH, SEQ)), atol)
    results = [_run_check("config", _config_roundtrip, subject), _run_check("build", _build_check, subject)]
    if subject.model is None:
        return results
    return results + [_run_check(name, fn, subject) for name, fn, applies in CHECKS if applies(spec)]


def assert_conforms(spec: ArchSpec | str) -> None:
    """pytest helper for plugin repos: fails with every failed check listed."""
    failed = [r for r in check_architecture(spec) if not r.ok]
    assert not failed, "; ".join(f"{r.name}: {r.detail}" for r in failed)
