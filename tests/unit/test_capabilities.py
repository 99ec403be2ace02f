"""Optional capabilities are declared (arena.api protocols and ArchSpec/Task fields), and the core reads the
declarations: no hasattr/getattr probing for a capability by name."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from arena.api import AuxLoss, CustomFit, ExtraMetrics, OwnInit, StepDecoder, Task
from arena.blocks import aux_loss_modules, build_model, can_step, collect_aux_loss, module_logs
from arena.registry import ARCHS, TASKS, get_arch, get_task
from arena.testing import conformance_setup

ARENA = Path(__file__).resolve().parents[2] / "arena"


def test_width_multiple_is_one_declaration():
    t = get_arch("transformer")
    assert t.width_step(t.config(n_heads=3)) == 6
    assert get_arch("moe").width_step(get_arch("moe").config()) == 2 * get_arch("moe").config().n_heads
    assert get_arch("rnn").width_step(get_arch("rnn").config()) == 1


def test_succinctness_ladder_steps_by_the_declared_width():
    from arena.succinctness import _width_step

    assert _width_step("transformer", ["arch.n_heads=2"]) == 4
    assert _width_step("transformer", ["rnn:arch.hidden=3"]) == 2 * get_arch("transformer").config().n_heads
    assert _width_step("rnn", ["arch.n_heads=2"]) == 1  # a field the arch does not have is not applied


def test_fit_params_keeps_even_multiples_of_the_width_step():
    from arena.api import ModelShape
    from arena.spec import fit_params

    arch = get_arch("transformer")
    shape = fit_params(arch, arch.config(n_heads=3), ModelShape(20, 64, 2, 32), 200_000)
    assert shape.d_model % 6 == 0
    rnn = get_arch("rnn")
    assert fit_params(rnn, rnn.config(), ModelShape(20, 64, 2, 32), 200_000).d_model % 2 == 0


@pytest.mark.parametrize("name", sorted(TASKS.names()))
def test_task_capabilities_are_declared(name):
    cls = get_task(name).cls
    assert cls.slice_keys is None or isinstance(cls.slice_keys, tuple)
    at = cls.depth_config(2)
    if at is not None:  # a depth family: the split exists and the overrides are config fields
        overrides, split = at
        assert split in cls.split_names
        assert set(overrides) <= set(get_task(name).config.model_fields)


def test_depth_families_declare_a_depth_knob():
    for name in ("recall-depth", "counter-chain", "nested-parity", "scan-depth"):
        assert get_task(name).cls.depth_config(3) is not None
    assert Task.depth_config(3) is None and Task.state_bits_bound(3, {}) is None


def test_module_protocols():
    moe = get_arch("moe")
    shape, cfg = conformance_setup(moe)
    torch.manual_seed(0)
    model = build_model(moe, shape, cfg).train()
    model(torch.randint(1, shape.vocab_size, (2, 8)))
    mods = aux_loss_modules(model)
    assert mods and all(isinstance(m, AuxLoss) for m in mods)
    assert collect_aux_loss(model).item() > 0
    assert can_step(model) and isinstance(model, StepDecoder)
    assert any(isinstance(m, ExtraMetrics) for m in model.modules()) and module_logs(model)
    hyena = get_arch("hyena")
    shape, cfg = conformance_setup(hyena)
    model = build_model(hyena, shape, cfg)
    assert not can_step(model)  # the backbone has step(), but the spec does not declare it
    assert any(isinstance(m, OwnInit) for m in model.modules())


def test_custom_fit_is_declared_and_implemented():
    sm = get_arch("state-machine")
    assert sm.custom_fit
    shape, cfg = conformance_setup(sm)
    assert isinstance(build_model(sm, shape, cfg), CustomFit)
    assert not any(ARCHS.get(n).custom_fit for n in ARCHS.names() if n != "state-machine")


def test_only_task_specific_models_report_a_hand_written_prior():
    from arena.api import HandWrittenPrior

    for name in ARCHS.names():
        spec = ARCHS.get(name)
        if spec.kind != "model" and not spec.task_specific:
            continue  # a mixer is built into the generic backbone, which has no prior
        shape, cfg = conformance_setup(spec)
        assert isinstance(build_model(spec, shape, cfg), HandWrittenPrior) == spec.task_specific, name


def test_hyena_declares_its_flop_counter_need():
    from arena.measure.flops import counted_forward_flops

    spec = get_arch("hyena")
    assert spec.counts_flops_with_grad
    shape, cfg = conformance_setup(spec)
    model = build_model(spec, shape, cfg).eval()
    assert counted_forward_flops(model, torch.ones(1, 8, dtype=torch.long), True) > 0


CAPABILITY_NAMES = ("n_heads", "iid_depths", "official_lines", "aux_loss", "extra_metrics", "reset_parameters_arena",
                    "draw_online", "headline_split", "state_bits_bound", "capture_attention", "prune_heads", "fit",
                    "hand_written_prior")


def test_the_core_does_not_probe_capabilities_by_name():
    names = "|".join(CAPABILITY_NAMES)
    probe = re.compile(rf"""(hasattr|getattr)\([^)]*["']({names})["']""")
    hits = [f"{p.relative_to(ARENA.parent)}:{i}" for p in sorted(ARENA.rglob("*.py")) if p.name != "testing.py"
            for i, line in enumerate(p.read_text().splitlines(), 1) if probe.search(line)]
    assert not hits, hits


def test_metrics_are_registered_and_tasks_agree_with_them():
    from arena.metrics import METRICS, aggregate, get_metric, register_metric, validation_metric

    for name in sorted(TASKS.names()):
        cls = get_task(name).cls
        assert get_metric(cls.metric).higher_is_better == cls.higher_is_better, name
    assert validation_metric("exact_match") == "tf_exact_match" and validation_metric("accuracy") == "accuracy"
    try:
        spec = register_metric("test_max", aggregation=max)
        per = {"token_acc": [(1, 2), (3, 4)], "test_max": [0.25, 0.75]}
        assert aggregate(per, [0, 1], "test_max") == {"token_acc": 4 / 6, "test_max": 0.75, "n": 2.0}
        assert register_metric("test_max", aggregation=max) == spec  # the same declaration again is fine
        with pytest.raises(ValueError, match="already registered"):
            register_metric("test_max", higher_is_better=False, aggregation=max)
    finally:
        METRICS.pop("test_max", None)
    with pytest.raises(ValueError, match="unknown metric"):
        get_metric("exact_mach")


def test_only_harness_tasks_are_lm_eval_scored():
    from arena.api import HarnessTask

    assert issubclass(get_task("lm").cls, HarnessTask)
    assert not any(issubclass(get_task(n).cls, HarnessTask) for n in TASKS.names() if n != "lm")


def test_submit_defaults_to_the_tasks_that_declare_it():
    from arena.submit import check_tasks, default_tasks

    assert default_tasks() == ["scan-depth"] == check_tasks([])
