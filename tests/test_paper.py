"""Paper-ready tables: one block per task, best in bold (never a task-specific model's ratio), readable numbers."""

from __future__ import annotations

import re

import pytest

from arena.export import leaderboard_frame
from arena.leaderboard.synthetic import add_run, seed_database
from arena.paper import build_blocks, si, to_latex, to_markdown
from arena.store.engine import open_store


@pytest.mark.parametrize("value,text", [(1670.0, "1.67k"), (3.53e6, "3.53M"), (9.7, "9.70"), (164, "164"),
                                        (0.0123, "0.0123"), (2.5e9, "2.50G"), (999.96, "1.00k"), (0, "0"),
                                        (None, ""), (float("nan"), "")])
def test_three_significant_figures_with_si_suffixes(value, text):
    assert si(value) == text


@pytest.fixture
def board(db_url):
    engine = seed_database(db_url, 60)  # 5 archs x 2 tasks x 3 sizes x 2 seeds
    # a task-specific model that clears the gate with 164 parameters: best raw ratio, but never bold
    for seed in (0, 1):
        add_run(engine, arch="lexsm", task="scan-depth", split="depth", seed=seed, task_specific=True, score=0.99,
                normalized_score=0.99, params_total=164, params_active=164, metric="exact_match")
    # a long variant (becomes a key explained under the table)
    cfg = {"spec": {"arch": "rnn", "task": "scan-depth", "size": "tiny", "seed": 0,
                    "arch_config": {"cell": "gru", "dropout": 0.25, "bidirectional_encoder": False},
                    "task_config": {}, "train": {"lr": 0.001, "max_steps": 1500}}}
    add_run(engine, arch="rnn", task="scan-depth", split="depth", config=cfg, score=0.7, normalized_score=0.7)
    return leaderboard_frame(open_store(db_url, readonly=True))


def test_one_block_per_task_with_label_and_booktabs(board):
    tex = to_latex(board, 0.5)
    assert tex.count("\\begin{table}") == 2 and tex.count("\\toprule") == 2 and tex.count("\\bottomrule") == 2
    assert "\\label{tab:arena-scan-depth-depth}" in tex and "\\label{tab:arena-nested-parity-np-mem}" in tex
    assert "e+0" not in tex  # no 1.67e+03 style numbers
    header = next(line for line in tex.splitlines() if line.startswith("Arch &"))
    assert "Task" not in header and len(header.split("&")) <= 13  # the task is the block's caption, not a column
    md = to_markdown(board, 0.5)
    assert md.count("### ") == 2 and "### scan-depth · depth" in md


def test_best_in_bold_skips_task_specific_ratios(board):
    blocks = {b.task: b for b in build_blocks(board, 0.5)}
    scan = blocks["scan-depth"]
    col = scan.headers.index("Norm./M params")
    rows = {cells[0].text: cells for cells in scan.rows}
    lexsm = rows["lexsm †"]
    assert lexsm[col].text and not lexsm[col].bold  # it has the largest ratio, yet is not ranked
    bold = [cells for cells in scan.rows if cells[col].bold]
    assert len(bold) == 1
    sub = board[(board["task"] == "scan-depth") & ~board["task_specific"]]
    assert bold[0][col].text == si(sub["norm_per_mparam"].max())
    score = scan.headers.index("Score")
    assert lexsm[score].bold  # the score column ranks everyone: 0.99 is the best score
    assert any("† task-specific" in n for n in scan.notes)


def test_long_variants_become_keys_explained_under_the_table(board):
    scan = next(b for b in build_blocks(board, 0.5) if b.task == "scan-depth")
    col = scan.headers.index("Variant")
    keys = {cells[col].text for cells in scan.rows} - {"default"}
    assert keys == {"v1"}
    legend = [n for n in scan.notes if n.startswith("v1: ")]
    assert legend == ["v1: bidirectional_encoder=false, cell=gru, dropout=0.25, lr=0.001"]
    assert all(len(cells[col].text) <= 24 for cells in scan.rows)
    assert re.search(r"\| v1 \|", to_markdown(board, 0.5))
