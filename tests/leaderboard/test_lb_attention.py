"""Run-detail attention sections and derived-run marking, on a real tiny run that was analysed and pruned."""

from __future__ import annotations

import pytest
from test_lb_app import assert_clean, render, texts


@pytest.fixture(scope="module")
def attention_db(tmp_path_factory):
    """One transformer run trained with train.log_attention, analysed, and pruned by importance (keep 2 of 4, with
    and without a 2-step fine-tune) and at random (keep 2): real runs, ~10 s."""
    import os

    from arena.analyze import analyze_run
    from arena.prune_run import prune_run
    from arena.runner import run
    from arena.spec import RunSpec
    from arena.store.engine import open_store

    tmp = tmp_path_factory.mktemp("attn")
    url = f"sqlite:///{tmp / 'attn.db'}"
    old = os.environ.get("ARENA_CHECKPOINT_DIR")
    os.environ["ARENA_CHECKPOINT_DIR"] = str(tmp / "ck")
    try:
        spec = RunSpec(arch="transformer", task="mqar", size="tiny", arch_config={"n_heads": 4},
                       task_config={"n_train": 64, "n_val": 16, "n_test": 16, "seq_len": 16, "num_kv_pairs": 2})
        res = run(spec, overrides=["train.max_steps=6", "train.eval_every=3", "train.batch_size=4",
                                   "train.log_attention=true", "latency.min_run_time=0.01"], db=url)
        engine = open_store(url)
        analyze_run(engine, res.run_id, "val", 8)
        for ft in (0, 2):
            prune_run(engine, res.run_id, "importance", "2", finetune_steps=ft, n_examples=8)
        prune_run(engine, res.run_id, "random", "2", seed=1)
    finally:
        if old is None:
            os.environ.pop("ARENA_CHECKPOINT_DIR", None)
        else:
            os.environ["ARENA_CHECKPOINT_DIR"] = old
    return url, res.run_id


def test_run_detail_shows_heatmaps_pattern_curves_and_pruning(attention_db, monkeypatch):
    url, parent = attention_db
    monkeypatch.setenv("ARENA_DB_URL", url)
    at = render("run_detail", {"run": str(parent)})
    assert_clean(at)
    body = texts(at)
    for title in ("Attention per head (arena analyze)", "Attention over training (train.log_attention)",
                  "Pruning curve (arena prune)"):
        assert title in body
    # training curve + heatmaps + pattern + attention curves + pruning curve
    assert len(at.get("vega_lite_chart")) == 5
    prune_table = at.dataframe[-1].value
    assert set(prune_table["method"]) == {"parent", "importance", "random"}
    assert sorted(prune_table["heads_kept"]) == [2, 2, 2, 4]


def test_derived_run_is_marked_and_reproduced_by_its_prune_command(attention_db, monkeypatch):
    url, parent = attention_db
    monkeypatch.setenv("ARENA_DB_URL", url)
    at = render("run_detail", {"run": str(parent + 2)})
    assert_clean(at)
    assert any("Derived run: run" in i.value for i in at.info)
    assert any(c.value.startswith(f"arena prune {parent} --method importance --keep 2 --finetune-steps 2")
               for c in at.code)
    at = render("leaderboard")
    assert_clean(at)
    table = at.dataframe[0].value
    # the derived runs have their parent's config: each is its own row, labelled and badged, never a "seed"
    assert len(table) == 4 and list(table["n"]) == [1, 1, 1, 1]
    labels = sorted(str(v).split(" · ")[0] for v in table["variant_short"])
    assert [v for v in labels if v.startswith("pruned")] == [
        "pruned importance 2 heads", "pruned importance 2 heads +ft 2", "pruned random 2 heads"]
    assert sum("pruned" in list(b) for b in table["badges"]) == 3
