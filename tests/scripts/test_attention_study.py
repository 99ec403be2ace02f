"""scripts/attention_study.py: a report for some tasks replaces only their rows of the committed CSVs, and the other
tasks' rows come back from the CSV exactly as written (types and provenance included)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

from attention_study import _write_csv, merge_rows, read_rows, uncovered  # noqa: E402


def _row(task, run_id, score, **kw):
    return {"task": task, "method": "parent", "heads_kept": 16, "score": score, "higher_is_better": True,
            "seed": None, "run_id": run_id, "config_hash": "1234e5678", "git_commit": "6ca61ad", "command": "arena run"} | kw


def test_report_for_one_task_keeps_the_other_tasks_rows(tmp_path):
    path = tmp_path / "pruning.csv"
    old = [_row("scan", 4, 0.986), _row("mqar", 1, 0.249), _row("mqar", 5, 0.217, method="random", seed=2),
           _row("lm", 2, 2.328)]
    _write_csv(path, old)
    assert read_rows(path) == old  # None, bools, ints, floats and digit-like hashes survive the round trip
    new = [_row("mqar", 1, 0.749, heads_kept=4), _row("scan", 9, 0.0)]  # the new database's scan row is not asked for
    merged = merge_rows(read_rows(path), new, ["mqar"])
    assert merged == [old[0], new[0], old[3]]  # mqar replaced in place, scan and lm untouched
    _write_csv(path, merged)
    lines = path.read_text().splitlines()
    assert [ln.split(",")[0] for ln in lines[1:]] == ["scan", "mqar", "lm"]
    assert merge_rows([], new, ["mqar", "lm"]) == [new[0]]  # no CSV yet: only the asked tasks, none invented


def test_report_for_one_arch_keeps_the_other_archs_rows_of_the_same_task():
    """A fresh database with only compressive LM runs: ``--tasks lm --archs compressive`` must not drop the
    committed transformer LM rows (whose database is gone), nor rows without an arch column (transformer's)."""
    tf_lm = {"arch": "transformer", "task": "lm", "reg_lambda": None, "layer": 0, "run_id": 2}
    tf_scan = tf_lm | {"task": "scan", "run_id": 4}
    old_comp = tf_lm | {"arch": "compressive", "reg_lambda": 0.1, "run_id": 7}
    comp0, comp1 = (tf_lm | {"arch": "compressive", "reg_lambda": lam, "run_id": i} for i, lam in ((1, 0.0), (2, 0.1)))
    assert merge_rows([tf_scan, tf_lm], [comp0, comp1], ["lm"], ["compressive"]) == [tf_scan, tf_lm, comp0, comp1]
    assert merge_rows([tf_lm, old_comp, tf_scan], [comp0, comp1], ["lm"], ["compressive"]) == [
        tf_lm, comp0, comp1, tf_scan]  # the old compressive rows replaced in place
    pruning = [_row("lm", 2, 2.328)]  # no arch column: a transformer parent's row
    assert merge_rows(pruning, [], ["lm"], ["compressive"]) == pruning
    assert merge_rows(pruning, [], ["lm"]) == []  # all archs asked, none in the database: the task's rows go


def test_a_report_against_a_database_without_the_asked_runs_is_refused_before_anything_is_replaced(tmp_path):
    """`report --tasks lm` against a database of MQAR runs would replace the committed LM rows with nothing: the
    check names what is missing (so the stage stops before writing); a database that holds the asked groups passes,
    and asked groups without committed rows (nothing to lose) do not count."""
    committed = [[_row("scan", 4, 0.986), _row("lm", 2, 2.328)],
                 [{"arch": "compressive", "task": "lm", "run_id": 7}]]
    mqar_db = [[_row("mqar", 1, 0.749)], []]
    assert uncovered(committed, mqar_db, ["lm"]) == "the database holds no runs of lm (compressive), lm (transformer)"
    assert uncovered(committed, mqar_db, ["lm"], ["compressive"]) == "the database holds no runs of lm (compressive)"
    assert uncovered(committed, mqar_db, ["mqar"]) is None  # nothing committed for mqar: nothing to lose
    comp_db = [[], [{"arch": "compressive", "task": "lm", "run_id": 1}]]
    assert uncovered(committed, comp_db, ["lm"], ["compressive"]) is None
    assert "lm (transformer)" in uncovered(committed, comp_db, ["lm"])  # all archs asked: the transformer rows
    path = tmp_path / "pruning.csv"
    _write_csv(path, committed[0])
    assert uncovered([read_rows(path)], [[]], ["scan", "mqar"]) == "the database holds no runs of scan (transformer)"
