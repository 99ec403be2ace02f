"""Every built-in architecture, submitted as a plugin, passes and scores within noise of `arena run` on the same
seeds (model seed and data seed), and the example plugin does too.

Slow: one submission plus one `arena run` per architecture (counter-chain, 20 steps; ~1 min each on a loaded
2-core machine, ~8 min in all). The state machine is task-specific with a custom trainer, which submissions
refuse by policy (its generic checks do not apply); that refusal is checked too.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from arena.registry import BUILTIN_ARCHS, register_arch
from arena.runner import run
from arena.submit import submit
from arena.submit.suite import suite_spec

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
GLA = REPO / "examples" / "arena-plugin-example" / "src" / "arena_plugin_example" / "gla.py"
STEPS, DATA_SEED = 20, 4242
GENERIC = [n for n in BUILTIN_ARCHS if n != "state-machine"]


def as_plugin(folder: Path, name: str) -> Path:
    module = BUILTIN_ARCHS[name].partition(":")[0]
    path = folder / f"{name.replace('-', '_')}_plugin.py"
    path.write_text(f'"""The built-in {name!r} under another name, as an outsider would submit it."""\n\n'
                    "from dataclasses import replace\n\n"
                    f"import {module} as builtin\n\n"
                    f"PLUGIN = replace(builtin.SPEC, name={name + '-as-plugin'!r}, source='plugin')\n")
    return path


def _same_run_score(arch_name: str, spec_obj, tmp_path: Path) -> float:
    """`arena run` of the same spec (registered in this process only for the call)."""
    from arena.registry import ARCHS

    register_arch(spec_obj)
    try:
        spec = suite_spec(arch_name, "counter-chain", 0, DATA_SEED, STEPS)
        return run(spec, db=f"sqlite:///{tmp_path / 'run.db'}").record["score"]
    finally:
        ARCHS.unregister(arch_name)


@pytest.mark.parametrize("name", GENERIC)
def test_builtin_submitted_as_a_plugin_scores_like_arena_run(tmp_path, name):
    from dataclasses import replace

    from arena.registry import get_arch

    path = as_plugin(tmp_path, name)
    result = submit(str(path), db=f"sqlite:///{tmp_path / 'submit.db'}", tasks=["counter-chain"],
                    max_steps=STEPS, data_seed=DATA_SEED)
    assert result.ok, result.message
    ours = _same_run_score(f"{name}-as-plugin", replace(get_arch(name), name=f"{name}-as-plugin"), tmp_path)
    assert result.runs[0]["score"] == pytest.approx(ours, abs=0.02), (result.runs[0]["score"], ours)


def test_the_example_plugin_scores_like_arena_run(tmp_path):
    spec = importlib.util.spec_from_file_location("example_gla", GLA)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    result = submit(str(GLA), db=f"sqlite:///{tmp_path / 'submit.db'}", tasks=["counter-chain"], max_steps=STEPS,
                    data_seed=DATA_SEED)
    assert result.ok, result.message
    assert result.runs[0]["score"] == pytest.approx(_same_run_score("gla-mini", module.SPEC, tmp_path), abs=0.02)


def test_the_state_machine_is_refused_by_policy(tmp_path):
    result = submit(str(as_plugin(tmp_path, "state-machine")), db=f"sqlite:///{tmp_path / 'a.db'}",
                    tasks=["counter-chain"], max_steps=3)
    assert not result.ok and result.failed_check in ("task-specific", "trainer"), result.message
