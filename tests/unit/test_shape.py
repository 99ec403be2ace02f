"""The shape of the core (issue 17): short functions, and the test helpers kept out of production code.

* No function in ``arena/`` is longer than 60 lines unless its docstring says why (a sentence with "Long because").
* ``arena.testing`` (the conformance checks) is imported only by tests and by the conformance command: ``arena
  validate`` and the submission worker that runs the same checks on a plugin (plus the zygote that pre-imports what
  that worker uses).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MAX_LINES = 60
REASON = "Long because"
# functions another change of issue 17 is splitting right now: each entry names who and why, and goes when it lands
PENDING: dict[str, str] = {
    "arena/runner.py::execute": "core-record splits it into build / train / score / measure steps (RunRecord)",
}
TESTING_IMPORTERS = {
    "arena/testing.py": "itself",
    "arena/cli/commands_core.py": "arena validate, the conformance command",
    "arena/submit/worker.py": "op_conform: the conformance checks on a submitted plugin, in its isolated worker",
    "arena/submit/zygote.py": "pre-imports what the workers use, op_conform included",
}


def _modules(root: Path) -> list[tuple[str, ast.Module]]:
    return [(p.relative_to(root).as_posix(), ast.parse(p.read_text(encoding="utf-8")))
            for p in sorted((root / "arena").rglob("*.py"))]


def long_functions(root: Path = ROOT) -> list[str]:
    out = []
    for rel, tree in _modules(root):
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                where = f"{rel}::{node.name}"
                if n > MAX_LINES and REASON not in (ast.get_docstring(node) or "") and where not in PENDING:
                    out.append(f"{where} ({n} lines)")
    return out


def imports_of_testing(root: Path = ROOT) -> list[str]:
    out = []
    for rel, tree in _modules(root):
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            if any(n == "arena.testing" or n.startswith("arena.testing.") for n in names) and rel not in TESTING_IMPORTERS:
                out.append(f"{rel}:{node.lineno}")
    return out


def test_no_long_functions_without_a_reason():
    assert not long_functions(), f"split these, or say in the docstring why not ('{REASON} ...')"


def test_the_test_helpers_stay_out_of_production_code():
    assert not imports_of_testing()


def test_the_checks_see_what_they_claim(tmp_path):
    """The walkers find a long function and a stray import (so a green result means something)."""
    (tmp_path / "arena").mkdir()
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_LINES))
    (tmp_path / "arena" / "bad.py").write_text(f"import arena.testing\n\n\ndef long():\n{body}\n\n\ndef fine():\n"
                                               f'    """{REASON} it is a table."""\n{body}\n')
    assert long_functions(tmp_path) == [f"arena/bad.py::long ({MAX_LINES + 1} lines)"]
    assert imports_of_testing(tmp_path) == ["arena/bad.py:1"]
