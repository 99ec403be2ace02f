"""Exports: values equal the database, the gate keeps chance-level models out of ratio rankings, escaping."""

from __future__ import annotations

import io
import json
import math
import statistics
from collections import defaultdict

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from arena.cli.app import app
from arena.errors import ArenaError
from arena.export import (
    COST_AXES,
    latex_escape,
    leaderboard_frame,
    md_escape,
    pareto_front,
    read_csv_meta,
    render,
    to_latex,
    to_markdown,
)
from arena.leaderboard.synthetic import add_run, seed_database
from arena.measure.hardware import hardware_label as measured_label
from arena.store.engine import open_store
from arena.store.models import Run

runner = CliRunner()


@pytest.fixture
def seeded(db_url):
    seed_database(db_url, 120, lrs=(0.003, 0.001)).dispose()  # 5 archs x 2 tasks x 3 sizes x 2 lrs x 2 seeds
    return db_url


def expected_rows(url: str, gate: float) -> dict[tuple, dict]:
    """Aggregate straight from the ORM rows, independently of pandas."""
    groups: dict[tuple, list[Run]] = defaultdict(list)
    with Session(open_store(url)) as s:
        for r in s.scalars(select(Run).where(Run.status == "completed")):
            lr = r.config["spec"]["train"]["lr"]
            groups[(r.arch, r.task, r.split, r.size, "" if lr == 0.003 else f"train.lr={lr}")].append(r)
    out = {}
    for key, runs in groups.items():
        scores = [r.score for r in runs]
        norms = [r.normalized_score for r in runs]
        norm = statistics.mean(norms)
        params = statistics.mean(r.params_total for r in runs)
        flops = statistics.mean(r.flops_forward_per_example for r in runs)
        lat = statistics.median(r.latency_p50_ms for r in runs)
        ok = norm >= gate and norm > 0
        out[key] = {
            "n": len(runs), "score_mean": statistics.mean(scores), "score_std": statistics.stdev(scores),
            "normalized_mean": norm, "normalized_std": statistics.stdev(norms), "params_total": params,
            "params_active": statistics.mean(r.params_active for r in runs), "flops_per_example": flops,
            "latency_p50_ms": lat, "memory_mb": statistics.mean(r.memory_mb for r in runs),
            "norm_per_mparam": norm / (params / 1e6) if ok else None,
            "norm_per_gflop": norm / (flops / 1e9) if ok else None, "norm_per_ms": norm / lat if ok else None,
            "hardware": measured_label(runs[0].hardware), "seeds": ",".join(str(r.seed) for r in
                                                                             sorted(runs, key=lambda r: r.seed)),
        }
    return out


@pytest.mark.parametrize("gate", [0.5, 0.3])
def test_export_values_match_the_database(seeded, gate):
    frame = leaderboard_frame(open_store(seeded, readonly=True), gate=gate)
    expected = expected_rows(seeded, gate)
    assert len(frame) == len(expected) == 60
    for _, row in frame.iterrows():
        exp = expected[(row["arch"], row["task"], row["split"], row["size"], row["variant"])]
        for col, v in exp.items():
            if v is None:
                assert math.isnan(row[col]), (col, row[col])
            elif isinstance(v, str):
                assert row[col] == v, col
            else:
                assert row[col] == pytest.approx(v, rel=1e-9), col
    assert set(frame["variant"]) == {"", "train.lr=0.001"}
    assert frame["source"].eq("builtin").all() and frame["plugin_name"].isna().all()


def test_chance_level_model_never_appears_in_a_ratio_ranking(seeded):
    engine = open_store(seeded)
    # a 164-parameter model at 50 % on a binary task, and a tiny model slightly above chance
    add_run(engine, arch="lexsm", task="nested-parity", split="np-mem", chance=0.5, score=0.5, normalized_score=0.0,
            params_total=164, params_active=164, flops_forward_per_example=3e4, latency_p50_ms=0.01,
            metric="accuracy")
    add_run(engine, arch="tiny-guess", task="nested-parity", split="np-mem", chance=0.5, score=0.6,
            normalized_score=0.2, params_total=300, params_active=300, flops_forward_per_example=6e4,
            latency_p50_ms=0.01, metric="accuracy")
    for gate in (0.0, 0.25, 0.5):
        frame = leaderboard_frame(open_store(seeded, readonly=True), gate=gate)
        raw_per_param = frame["score_mean"] / frame["params_total"]
        assert frame.loc[raw_per_param.idxmax(), "arch"] == "lexsm"  # what a naive ratio would crown
        lexsm = frame[frame["arch"] == "lexsm"]
        assert len(lexsm) == 1 and lexsm[["norm_per_mparam", "norm_per_gflop", "norm_per_ms"]].isna().all(axis=None)
        for _, ratio, _, _, _ in COST_AXES.values():
            ranked = frame.dropna(subset=[ratio]).sort_values(ratio, ascending=False)
            assert "lexsm" not in set(ranked["arch"]) and "chance-sm" not in set(ranked["arch"])
            assert ranked["normalized_mean"].ge(gate).all() and ranked["normalized_mean"].gt(0).all()
        tiny = frame[frame["arch"] == "tiny-guess"].iloc[0]
        assert math.isnan(tiny["norm_per_mparam"]) == (gate > 0.2)
        assert not frame.loc[frame["arch"].isin(["lexsm", "chance-sm"]), "pareto"].any()


def test_mixed_hardware_is_labelled_and_gets_no_latency_ratio(db_url):
    engine = seed_database(db_url, 0)
    hw2 = {"device": "cpu", "cpu": "Other CPU", "threads": 4}
    add_run(engine, seed=0, normalized_score=0.9, score=0.9)
    add_run(engine, seed=1, normalized_score=0.8, score=0.8, hardware=hw2)
    frame = leaderboard_frame(open_store(db_url, readonly=True))
    row = frame.iloc[0]
    assert row["n"] == 2 and row["hardware"] == "mixed"
    assert math.isnan(row["norm_per_ms"]) and not row["pareto_latency"]
    assert row["norm_per_mparam"] == pytest.approx(0.85 / (row["params_total"] / 1e6))


def test_different_training_budgets_are_not_averaged(db_url):
    from arena.leaderboard.synthetic import insert_rows, make_rows

    engine = seed_database(db_url, 0)
    for rid, steps in ((1, 1500), (2, 300), (3, 300)):
        runs, metrics, prov = make_rows(1, start_id=rid)
        runs[0]["seed"] = runs[0]["config"]["spec"]["seed"] = rid
        runs[0]["config"]["spec"]["train"]["max_steps"] = steps
        insert_rows(engine, runs, metrics, prov)
    frame = leaderboard_frame(open_store(db_url, readonly=True))
    assert sorted(zip(frame["max_steps"], frame["n"], strict=True)) == [(300, 2), (1500, 1)]
    assert frame["variant"].eq("").all()  # steps have their own column, not a variant


def test_include_failed_counts_failures_without_averaging_them(db_url):
    engine = seed_database(db_url, 0)
    add_run(engine, seed=0, normalized_score=0.9, score=0.9)
    add_run(engine, seed=1, status="failed", error="boom", score=None, normalized_score=None)
    ro = open_store(db_url, readonly=True)
    assert leaderboard_frame(ro).iloc[0][["n", "n_failed"]].tolist() == [1, 0]
    row = leaderboard_frame(ro, include_failed=True).iloc[0]
    assert row["n"] == 1 and row["n_failed"] == 1 and row["score_mean"] == pytest.approx(0.9)


def test_pareto_front_definition():
    cost = [1, 2, 3, 4, 2, np.nan]
    score = [0.1, 0.5, 0.4, 0.9, 0.5, 1.0]
    assert pareto_front(cost, score).tolist() == [True, True, False, True, True, False]
    assert pareto_front([], []).tolist() == []


def test_markdown_and_latex_escape_special_characters(db_url):
    engine = seed_database(db_url, 0)
    add_run(engine, arch="a_b|c*<x>", source="plugin", plugin_name="50% & $5 #1 {x}^~\\", plugin_version="1.0",
            normalized_score=0.9, score=0.9)
    frame = leaderboard_frame(open_store(db_url, readonly=True))
    md = to_markdown(frame)
    assert r"a\_b\|c\*\<x\>" in md and "<x>" not in md
    header, rule, row = md.splitlines()[:3]
    unescaped_pipes = [line.replace(r"\|", "").count("|") for line in (header, rule, row)]
    assert len(set(unescaped_pipes)) == 1  # the hostile name did not add a column
    tex = to_latex(frame)
    assert r"a\_b\textbar{}c*\textless{}x\textgreater{}" in tex
    assert r"50\% \& \$5 \#1 \{x\}\textasciicircum{}\textasciitilde{}\textbackslash{}" in tex
    assert r"& 1 & \textbf{0.900} &" in tex  # n=1: no ± std; the only row is the best
    assert latex_escape("test_ood") == r"test\_ood" and md_escape("[x](javascript:y)") == r"\[x\]\(javascript:y\)"


def test_cli_export_formats(seeded, tmp_path):
    def export(*args: str) -> str:
        res = runner.invoke(app, ["export", "--db", seeded, *args])
        assert res.exit_code == 0, (res.output, res.exception)
        return res.stdout

    frame = leaderboard_frame(open_store(seeded, readonly=True))
    text = export("--format", "csv", "--task", "scan-depth")
    csv = pd.read_csv(io.StringIO(text), comment="#")
    sub = frame[frame["task"] == "scan-depth"].reset_index(drop=True)
    assert list(csv.columns) == list(frame.columns) and len(csv) == len(sub)
    assert np.allclose(csv["score_mean"], sub["score_mean"])
    meta = read_csv_meta(text)
    assert meta["gate"] == 0.5 and meta["query"]["task"] == "scan-depth" and meta["methodology_version"]
    assert meta["units"]["latency_p50_ms"].startswith("ms") and meta["arena_version"]

    md = export("--format", "md", "--task", "scan-depth")
    assert md.startswith("### scan-depth · depth") and "nested-parity" not in md and "lr=0.001" in md

    tex = export("--format", "latex", "--split", "np-mem", "--gate", "0.9")
    assert tex.count("\\begin{table}") == 1 and "\\label{tab:arena-nested-parity-np-mem}" in tex
    body = tex[tex.index("\\midrule"):tex.index("\\bottomrule")]
    assert body.count("\\\\") == (frame["split"] == "np-mem").sum()  # one line per row
    assert "--" in tex and "gate of 0.9" in tex

    doc = json.loads(export("--format", "json", "--task", "nested-parity"))
    assert set(doc) == {"meta", "rows", "runs"} and doc["meta"]["methodology_version"]
    assert doc["meta"]["query"]["task"] == "nested-parity" and doc["meta"]["units"]["params_total"] == "parameters"
    ids = {i for row in doc["rows"] for i in row["run_ids"]}
    assert len(ids) == 60 and set(doc["runs"]) == {str(i) for i in ids}
    rec = doc["runs"][str(min(ids))]
    assert rec["provenance"]["git_commit"] and rec["provenance"]["packages"]["torch"]
    assert rec["reproduce"].startswith("arena run --arch ") and rec["task"] == "nested-parity"

    out = tmp_path / "board.parquet"
    res = runner.invoke(app, ["export", "--db", seeded, "--out", str(out)])
    assert res.exit_code == 0 and pd.read_parquet(out).shape == frame.shape
    import pyarrow.parquet as pq

    pmeta = json.loads(pq.read_schema(out).metadata[b"arena"])
    assert pmeta["gate"] == 0.5 and pmeta["units"]["memory_mb"].startswith("MiB")
    res = runner.invoke(app, ["export", "--db", seeded, "--out", str(tmp_path / "t.tex")])
    assert (tmp_path / "t.tex").read_text().startswith("% requires")
    res = runner.invoke(app, ["export", "--db", seeded, "--format", "parquet"])
    assert isinstance(res.exception, ArenaError) and "--out" in str(res.exception)
    res = runner.invoke(app, ["export", "--db", seeded, "--format", "xlsx"])
    assert isinstance(res.exception, ArenaError) and "csv, md, latex, json, parquet" in str(res.exception)
    res = runner.invoke(app, ["export", "--db", f"sqlite:///{tmp_path / 'none.db'}"])
    assert isinstance(res.exception, ArenaError) and "does not exist" in str(res.exception)


def test_leaderboard_command_runs_the_installed_app():
    from arena.cli.commands_export import app_path, leaderboard_command

    assert app_path().is_file() and app_path().parent.name in ("leaderboard", "arena.leaderboard")
    cmd = leaderboard_command("sqlite:///x.db", "127.0.0.1", 9999)
    assert cmd[1:4] == ["-m", "streamlit", "run"] and cmd[cmd.index("--server.address") + 1] == "127.0.0.1"
    assert cmd[cmd.index("--server.headless") + 1] == "true"


def test_csv_and_parquet_cells_cannot_run_as_spreadsheet_formulas(db_url):
    from arena.export import to_csv, to_parquet_bytes

    engine = seed_database(db_url, 0)
    evil = {"=HYPERLINK(\"http://x\")": "=1+1", "+cmd|' /C calc'!A0": "@SUM(A1)", "-2+3": "\tx", "\rdata": "ok"}
    for i, (name, version) in enumerate(evil.items()):
        add_run(engine, seed=i, arch=f"arch{i}", source="plugin", plugin_name=name, plugin_version=version,
                normalized_score=0.9, score=0.9)
    frame = leaderboard_frame(open_store(db_url, readonly=True))
    import csv

    text = "".join(line for line in io.StringIO(to_csv(frame), newline="") if not line.startswith("#"))
    table = list(csv.DictReader(io.StringIO(text, newline="")))
    cells = {r["plugin_name"] for r in table} | {r["plugin_version"] for r in table}
    assert all(not c.startswith(("=", "+", "-", "@", "\t", "\r")) for c in cells), cells
    assert {"'=HYPERLINK(\"http://x\")", "'@SUM(A1)", "' data", "'\tx", "ok"} <= cells
    assert {float(r["score_mean"]) for r in table} == {0.9}  # numbers are not touched
    back = pd.read_parquet(io.BytesIO(to_parquet_bytes(frame)))
    assert "'=1+1" in set(back["plugin_version"]) and "'-2+3" in set(back["plugin_name"])


def test_declared_flops_are_badged_and_left_out_of_the_per_flop_ranking(db_url):
    engine = seed_database(db_url, 0)
    add_run(engine, seed=0, arch="honest", normalized_score=0.9, score=0.9)
    add_run(engine, seed=0, arch="claims", source="plugin", plugin_name="claims.py", plugin_version="1",
            normalized_score=0.9, score=0.9, flops_status="declared", isolation="namespaces")
    frame = leaderboard_frame(open_store(db_url, readonly=True)).set_index("arch")
    assert frame.loc["claims", "flops_status"] == "declared" and frame.loc["claims", "isolation"] == "namespaces"
    assert math.isnan(frame.loc["claims", "norm_per_gflop"]) and frame.loc["honest", "norm_per_gflop"] > 0
    assert frame.loc["claims", "norm_per_mparam"] > 0  # parameters are counted by arena: still ranked
    assert "claims (claims.py 1) [FLOPs declared]" in to_markdown(frame.reset_index()).replace("\\", "")


def test_only_an_unexplained_flop_disagreement_marks_a_row_unverified(db_url):
    from arena.leaderboard.queries import badges

    engine = seed_database(db_url, 0)
    add_run(engine, arch="odd", flops_note="counter/analytic(matmul+attention) = 0.700; DISAGREEMENT > 2% with no "
                                           "known cause (an analytic formula error, or ops the counter misses)")
    add_run(engine, arch="lstm-like", flops_note="counter/analytic(matmul+attention) = 0.522; expected: "
                                                 "FlopCounterMode does not count LSTM")
    add_run(engine, arch="old", flops_note="counter/analytic(matmul+attention) = 0.522; DISAGREEMENT > 2% (ops the "
                                           "counter misses, e.g. nn.LSTM/FFT/scan, or an analytic error)")
    frame = leaderboard_frame(open_store(db_url, readonly=True)).set_index("arch")
    assert frame["flops_unverified"].to_dict() == {"odd": True, "lstm-like": False, "old": False}
    assert badges(frame.reset_index()).tolist()[list(frame.index).index("odd")] == ["unverified cost"]


def test_a_database_with_an_older_schema_still_reads(db_url):
    """The leaderboard opens databases read-only, so it never migrates them: a column added by a newer arena (here
    the submission columns) is simply absent, and reads as blank."""
    from sqlalchemy import text

    seed_database(db_url, 30).dispose()
    raw = open_store(db_url)
    with raw.begin() as conn:
        for col in ("flops_status", "isolation"):
            conn.execute(text(f"ALTER TABLE runs DROP COLUMN {col}"))
    raw.dispose()
    frame = leaderboard_frame(open_store(db_url, readonly=True))
    assert len(frame) == 30 and frame["flops_status"].isna().all() and frame["norm_per_mparam"].notna().any()
    # the JSON export reads every run's full record: the missing columns are null there too
    doc = json.loads(render(frame, "json", engine=open_store(db_url, readonly=True)))
    assert len(doc["runs"]) == 30 and all(r["isolation"] is None for r in doc["runs"].values())


def test_the_hand_written_prior_reaches_every_export_beside_params(db_url):
    """Task-specific rows carry their prior (synthetic ``chance-sm``: 709 B, 58 lines, 69.7 bits) into CSV, JSON,
    Parquet, Markdown and LaTeX; general models' cells are blank ("—")."""
    from arena.leaderboard.synthetic import PRIOR

    seed_database(db_url, 30).dispose()  # one seed of every arch x task x size
    engine = open_store(db_url, readonly=True)
    frame = leaderboard_frame(engine, task="scan-depth")
    ts = frame["task_specific"].astype(bool)
    assert ts.sum() == 3 and (~ts).sum() == 12
    csv = pd.read_csv(io.StringIO(render(frame, "csv")), comment="#")
    assert (csv.loc[ts, list(PRIOR)] == list(PRIOR.values())).all(axis=None) and csv.loc[~ts, list(PRIOR)].isna().all(
        axis=None)
    assert read_csv_meta(render(frame, "csv"))["units"]["prior_gzip_bytes"].startswith("bytes, gzip")
    doc = json.loads(render(frame, "json", engine=engine))
    sm = next(r for r in doc["rows"] if r["task_specific"])
    assert {k: sm[k] for k in PRIOR} == PRIOR and doc["meta"]["units"]["prior_learned_bits"].startswith("bits")
    assert doc["runs"][str(sm["run_ids"][0])]["prior"] == {"gzip_bytes": 709, "lines": 58, "learned_bits": 69.7}
    general = next(r for r in doc["rows"] if not r["task_specific"])
    assert all(general[k] is None for k in PRIOR)
    assert doc["runs"][str(general["run_ids"][0])]["prior"]["gzip_bytes"] is None
    buf = io.BytesIO(render(frame, "parquet"))
    assert pd.read_parquet(buf).loc[ts.to_numpy(), "prior_lines"].eq(58).all()
    md = to_markdown(frame)
    header = next(line for line in md.splitlines() if line.startswith("| Arch"))
    assert "| Params | Prior | FLOPs/ex |" in header
    sm_line = next(line for line in md.splitlines() if line.startswith("| chance-sm"))
    general_line = next(line for line in md.splitlines() if line.startswith("| rnn"))
    assert "| 709 B gzip, 58 lines, 69.7 bits |" in sm_line and "| — |" in general_line
    assert "no hand-written prior" in md
    tex = to_latex(frame)
    assert "Params & Prior & FLOPs/ex" in tex and "709 B gzip, 58 lines, 69.7 bits" in tex
    # a block without any task-specific model keeps its columns
    assert "Prior" not in to_markdown(frame[~ts])
