"""scripts/attention_tables.py: the claim table's relative change has the metric's direction, the costs are the
recorded ones, and the curve table lists every evaluation step per layer."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

from attention_tables import _better, claim_table, compressive_table, curve_table  # noqa: E402


def _prune_row(task, method, kept, ft, score, hib, params, flops, seed=None):
    return {"task": task, "method": method, "heads_kept": kept, "heads_total": 16, "finetune_steps": ft,
            "score": score, "higher_is_better": hib, "params_total": params, "flops_per_example": flops, "seed": seed}


def test_better_follows_the_metric_direction():
    assert abs(_better(0.6, 0.5, True) - 0.2) < 1e-12
    assert abs(_better(2.0, 2.5, False) - 0.2) < 1e-12  # bits/char down by a fifth: 20 % better
    assert _better(3.0, 2.5, False) < 0


def test_claim_table_rows():
    rows = [_prune_row("lm", "parent", 16, 0, 2.0, False, 1000, 400.0)]
    rows += [_prune_row("lm", "importance", 8, 0, 2.2, False, 800, 300.0),
             _prune_row("lm", "importance", 8, 50, 2.1, False, 800, 300.0)]
    rows += [_prune_row("lm", "random", 8, 0, s, False, 800, 300.0, seed=i) for i, s in enumerate((2.4, 2.6, 2.5))]
    latency = [{"task": "lm", "model": "keep 8", "ratio_to_parent": "0.9"}]
    table = claim_table(rows, latency).splitlines()
    assert len(table) == 3
    cells = [c.strip() for c in table[2].strip("|").split("|")]
    assert cells[:5] == ["lm", "8 of 16 (50%)", "25.0%", "20.0%", "10.0%"]
    assert cells[5:] == ["-10.0%", "-5.0%", "-25.0%", "–", "–"]


def test_curve_table_lists_every_step_and_layer():
    rows = [{"arch": "transformer", "task": "mqar", "step": s, "layer": li, "val": v, "entropy_norm": 1.0 - s / 1000,
             "head_entropy_min": 0.1, "head_entropy_max": 0.9, "erank": 10.0 + li, "train_loss": 2.0}
            for s, v in ((0, None), (250, 0.5)) for li in (0, 1)]
    table = curve_table(rows).splitlines()
    assert table[0].count("entropy") == 2
    assert table[2].startswith("| mqar | 0 | – | 2.000 | 1.000 (0.10–0.90) | 10.0 | 1.000 (0.10–0.90) | 11.0 |")
    assert table[3].startswith("|  | 250 | 0.500 | 2.000 | 0.750")


def test_compressive_table_puts_both_lambdas_side_by_side_per_step():
    rows = [{"arch": "compressive", "task": "lm", "reg_lambda": lam, "step": s, "layer": li,
             "entropy_norm": 0.5 - lam, "head_entropy_min": 0.1, "head_entropy_max": 0.9, "train_loss": None if s == 0
             else 2.0 + lam} for lam in (0.1, 0.0) for s in (0, 200) for li in (0, 1)]
    rows.append({"arch": "transformer", "task": "lm", "reg_lambda": None, "step": 0, "layer": 0})  # not in the table
    table = compressive_table(rows).splitlines()
    assert table[0] == ("| task | step | λ=0 train loss | L0 entropy (heads min–max) | L1 entropy (heads min–max) |"
                        " λ=0.1 train loss | L0 entropy (heads min–max) | L1 entropy (heads min–max) |")
    assert len(table) == 4
    assert table[2] == ("| lm | 0 | – | 0.500 (0.10–0.90) | 0.500 (0.10–0.90) | – | 0.400 (0.10–0.90) | "
                        "0.400 (0.10–0.90) |")
    assert table[3].startswith("|  | 200 | 2.000 | 0.500")
