"""scripts/headline.py: the headline CSV, tables and plot are regenerated from a run database."""

from __future__ import annotations

import csv
import importlib.util
from pathlib import Path

from arena.runner import run
from arena.spec import RunSpec, TrainConfig

ROOT = Path(__file__).resolve().parents[2]


def _script():
    spec = importlib.util.spec_from_file_location("headline_script", ROOT / "scripts" / "headline.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _row(model, split, seed, lr, val, steps=10):
    return {"model": model, "task": "scan", "split": split, "seed": seed, "lr": lr, "val_exact_match": val,
            "steps": steps}


def test_lr_is_chosen_on_seed_zero_validation_only():
    h = _script()
    rows = [_row("m", "length", 0, 1e-3, 0.90), _row("m", "length", 0, 3e-3, 0.95),
            _row("m", "length", 1, 3e-3, 0.10), _row("m", "length", 1, 1e-3, 0.99),  # seed 1 must not decide
            _row("m", "simple", 0, 1e-3, 1.0, steps=400), _row("m", "simple", 0, 3e-3, 1.0, steps=800)]
    h.select(rows)
    assert [r["lr_selected"] for r in rows] == [False, True, True, False, True, False]


def test_regenerates_csv_tables_and_plot_from_the_database(tmp_path):
    """Two tiny real runs (a 3-step state machine, a 4-step transformer): ~15 s."""
    db = f"sqlite:///{tmp_path / 'h.db'}"
    small = {"n_test_max": 30, "n_train_max": 200}
    run(RunSpec(arch="state-machine", task="scan-shift", split="simple", task_config=small,
                train=TrainConfig(max_steps=3)), db=db, overrides=["latency.enabled=false"])
    run(RunSpec(arch="transformer", task="scan", split="length", d_model=16, n_layers=1, task_config=small,
                train=TrainConfig(max_steps=4, eval_every=2, patience=2)), db=db, overrides=["latency.enabled=false"])
    doc = tmp_path / "h.md"
    doc.write_text("intro\n<!-- table:generalisation -->\nold\n<!-- /table:generalisation -->\n"
                   "<!-- table:shift -->\n<!-- /table:shift -->\nend\n")
    h = _script()
    assert h.main(["--db", db, "--out", str(tmp_path / "h.csv"), "--doc", str(doc), "--plot-dir", str(tmp_path),
                   "--earlier", "--kept"]) == 0
    rows = list(csv.DictReader((tmp_path / "h.csv").open()))
    assert {(r["model"], r["task"]) for r in rows} == {("state-machine (LexSM-164)", "scan-shift"),
                                                       ("transformer d16x1", "scan")}
    for r in rows:
        assert r["run_id"] and len(r["config_hash"]) == 64 and r["git_commit"] and r["reproduce"].startswith("arena run")
        assert r["n_test"] == "30" and float(r["cpu_seconds"]) > 0
    sm = next(r for r in rows if r["arch"] == "state-machine")
    assert int(sm["prior_skeleton_gzip_bytes"]) > 100 and int(sm["prior_skeleton_lines"]) > 10
    assert float(sm["prior_learned_bits"]) > 10
    text = doc.read_text()
    assert "old" not in text and text.startswith("intro\n") and text.endswith("end\n")
    assert "| transformer d16x1 | 3,568 | none |" in text and "B gzip" in text
    assert (tmp_path / "headline_scan_params.png").stat().st_size > 1000


def test_kept_rows_stand_in_for_a_lost_database_and_unfinished_runs_show_their_curve(tmp_path, monkeypatch):
    """A CSV this script wrote is read back (typed, with provenance, deduplicated against the database by config
    hash); a run that did not finish contributes the validation curve of its last checkpoint."""
    import sqlite3

    h = _script()
    db, db2 = f"sqlite:///{tmp_path / 'a.db'}", f"sqlite:///{tmp_path / 'b.db'}"
    small = {"n_test_max": 30, "n_train_max": 200}
    spec = RunSpec(arch="transformer", task="scan", split="simple", d_model=16, n_layers=1, task_config=small,
                   train=TrainConfig(max_steps=4, eval_every=2, checkpoint_every=2))
    monkeypatch.setenv("ARENA_CHECKPOINT_DIR", str(tmp_path / "ck"))
    run(spec, db=db, overrides=["latency.enabled=false"])
    first = tmp_path / "first.csv"
    assert h.main(["--db", db, "--out", str(first), "--doc", str(tmp_path / "none.md"), "--no-plot", "--earlier",
                   "--kept"]) == 0
    kept = h.kept_rows(str(first))
    assert len(kept) == 1 and kept[0]["seed"] == 0 and kept[0]["lr"] == 3e-3 and kept[0]["source"] == str(first)
    assert isinstance(kept[0]["val_exact_match"], float) and kept[0]["reproduce"].startswith("arena run")
    # the same run in the database wins; from another database the kept row stands in for it
    out = tmp_path / "again.csv"
    for url, source in ((db, "database"), (db2, str(first))):
        if url == db2:
            run(RunSpec(arch="transformer", task="scan", split="simple", d_model=16, n_layers=1, seed=1,
                        task_config=small, train=TrainConfig(max_steps=2)), db=db2, overrides=["latency.enabled=false"])
        assert h.main(["--db", url, "--out", str(out), "--doc", str(tmp_path / "none.md"), "--no-plot", "--earlier",
                       "--kept", str(first)]) == 0
        rows = list(csv.DictReader(out.open()))
        assert [r["source"] for r in rows if r["seed"] == "0"] == [source]
    h.select(rows := [*h.load(db2), *kept])
    assert "transformer d16x1" in h.table(rows, "scan", "converged")
    # an unfinished run: its last checkpoint's curve
    con = sqlite3.connect(tmp_path / "a.db")
    con.execute("UPDATE runs SET status = 'failed'")
    con.commit()
    con.close()
    con = sqlite3.connect(tmp_path / "a.db")
    con.execute("UPDATE runs SET params_total = NULL")  # as a running run has it: written when it completes
    con.commit()
    con.close()
    (un,) = h.unfinished_runs(db)
    assert un["params_total"] == int(rows[0]["params_total"]) > 0  # analytic, equal to what the finished run counted
    assert un["model"] == "transformer d16x1" and un["steps"] == 4 and un["val_curve"].startswith("2:")
    table = h.unfinished_table([un])
    assert "| transformer d16x1 |" in table and "4 / 4" in table and "failed (run 1)" in table


def test_the_skeletons_ceiling_on_scan_shift_is_below_the_share_it_can_parse():
    h = _script()
    ceil = h.shift_ceilings((0,))
    assert [c["split"] for c in ceil] == list(h.SPLITS)
    for c in ceil:  # SCAN's lexicon is right on a subset of the commands with at most one conjunction
        assert 0.2 < c["scan_lexicon"] < c["at_most_one_conj"] < 0.8 and c["n_test"] > 1000
    assert "| simple |" in h.ceiling_table(ceil, [])


def test_earlier_csv_rows_join_the_tables_marked_and_with_their_provenance():
    h = _script()
    sm = h.earlier_rows("results/headline.csv:state-machine")
    assert {(r["task"], r["split"]) for r in sm} == {("scan", s) for s in h.SPLITS}  # scan-depth is not a column
    assert all(r["model"].endswith("†") and r["earlier"] and r["git_commit"] and r["run_id"] for r in sm)
    assert all(int(r["prior_skeleton_gzip_bytes"]) > 100 and r["prior_learned_bits"] == 69.7 for r in sm)
    big = h.earlier_rows("results/headline_transformer_400steps.csv")
    assert {r["n_test"] for r in big} == {"200"} and not any(r["converged"] for r in big)
    rows = sm + big
    h.select(rows)
    assert all(r["lr_selected"] for r in rows)
    assert "0.00" in h.cpu_table(rows)  # earlier rows are not this database's CPU time
    assert "transformer-6.5M †" in h.table(rows, "scan", "generalisation")


def test_chomsky_table_regenerated_from_the_database(tmp_path):
    """One tiny real run (rnn, 4 steps, 20 test examples): a few seconds."""
    db = f"sqlite:///{tmp_path / 'c.db'}"
    run(RunSpec(arch="rnn", task="parity_check", size="tiny", train=TrainConfig(max_steps=4, eval_every=2),
                task_config={"n_train": 50, "n_val": 10, "n_test_per_length": 1, "eval_max_length": 60}), db=db,
        overrides=["latency.enabled=false"])
    spec = importlib.util.spec_from_file_location("chomsky_table", ROOT / "scripts" / "chomsky_table.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    doc = tmp_path / "t.md"
    doc.write_text("a\n<!-- table:chomsky -->\n<!-- /table:chomsky -->\nb\n")
    assert mod.main(["--db", db, "--out", str(tmp_path / "c.csv"), "--doc", str(doc)]) == 0
    rows = list(csv.DictReader((tmp_path / "c.csv").open()))
    assert len(rows) == 1 and rows[0]["task"] == "parity_check" and rows[0]["fitted"] in ("True", "False")
    text = doc.read_text()
    line = next(ln for ln in text.splitlines() if ln.startswith("| parity_check"))
    assert "| R |" in line and "fit " in line and line.endswith("| 100 | 100 | 52.0 | 100 | 100 |")
