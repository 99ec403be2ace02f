"""RunRecord: metric flattening, the column mapping onto ``runs``, and writing a record through the store."""

from __future__ import annotations

from types import SimpleNamespace

from arena.record import RunRecord, flatten_metrics, json_summary, summary
from arena.store import get_run, open_store, repo
from arena.store.models import Run

FIELDS = dict(arch="rnn", arch_version=1, arch_kind="mixer", arch_family="recurrent", task="scan-depth",
              task_version=1, split="depth", size="tiny", seed=0, config={"a": 1}, config_hash="r" * 64)
PROV = {"arena_version": "0", "git_commit": None, "git_dirty": None, "python": "3", "packages": {}, "command": "t"}
RESULTS = {"test": {"metrics": {"acc": 0.5, "em": None, "n": 10.0},
                    "slices": {"depth": {1: {"acc": 1.0, "n": 4.0}, 2: {"acc": 0.25, "n": 6.0}}}},
           "val": {"metrics": {"acc": 0.75, "n": 4.0}, "slices": {}}}


def test_flatten_metrics_one_row_per_split_name_and_slice():
    rows = flatten_metrics(RESULTS)
    assert {"split": "test", "name": "acc", "value": 0.5, "n": 10} in rows
    assert {"split": "test", "name": "em", "value": None, "n": 10} in rows
    assert {"split": "test", "name": "acc", "value": 0.25, "slice_key": "depth", "slice_value": "2", "n": 6} in rows
    assert {"split": "val", "name": "acc", "value": 0.75, "n": 4} in rows
    assert len(rows) == 5 and not any(r["name"] == "n" for r in rows)
    assert len(flatten_metrics(RESULTS, drop_none=True)) == 4


def test_every_record_column_is_a_runs_column():
    assert set(RunRecord().columns()) <= set(Run.__table__.c.keys())


def test_record_filled_by_steps_round_trips_through_the_store(db_url):
    rec = RunRecord(step=3, provenance=PROV)
    rec.set_params({"total": 100, "embedding": 10, "non_embedding": 90, "active": 100})
    rec.set_latency({"p50_ms": 1.5, "p90_ms": 2.0, "batch": 4, "throughput_per_s": 9.0})
    task = SimpleNamespace(metric="acc", chance=0.5, higher_is_better=True)
    rec.set_scores(RESULTS, task, "test")
    assert rec.score == 0.5 and rec.normalized_score == 0.0
    engine = open_store(db_url)
    rid = repo.create_run(engine, **FIELDS)
    repo.complete_run(engine, rid, rec)
    out = summary(get_run(engine, rid))
    assert out["status"] == "completed" and out["params"]["total"] == 100 and out["latency_ms"]["p50"] == 1.5
    assert out["scores"]["test"] == {"acc": 0.5, "em": None} and out["slices"]["test"]["depth"]["1"] == {"acc": 1.0}
    assert set(json_summary(out)) >= {"run_id", "params", "flops", "latency_ms", "scores", "slices"}


def test_replace_metrics_merges_extra_when_asked(db_url):
    engine = open_store(db_url)
    rid = repo.create_run(engine, **FIELDS)
    repo.complete_run(engine, rid, RunRecord(extra={"lm_eval": {"blimp": {"limit": 5}}}, provenance=PROV))
    repo.replace_metrics(engine, rid, ["val"], flatten_metrics({"val": RESULTS["val"]}),
                         {"lm_eval": {"val": {"limit": None}}}, merge=True)
    run = get_run(engine, rid)
    assert run.extra["lm_eval"] == {"blimp": {"limit": 5}, "val": {"limit": None}}
    assert [(m.split, m.name, m.value) for m in run.metrics] == [("val", "acc", 0.75)]


def test_import_runs_completes_an_earlier_failed_row_and_is_all_or_none(db_url):
    import pytest

    from arena.errors import StoreError

    engine = open_store(db_url)
    failed = repo.create_run(engine, **FIELDS)
    repo.end_run(engine, failed, "failed", "boom")
    other = dict(FIELDS, config_hash="o" * 64)
    ids = repo.import_runs(engine, [(FIELDS, RunRecord(score=0.9, provenance=PROV)),
                                    (other, RunRecord(score=0.1, provenance=PROV))])
    assert ids[0] == failed and ids[1] != failed
    assert get_run(engine, failed).status == "completed" and get_run(engine, failed).score == 0.9
    bad = RunRecord(provenance=PROV, metrics=[{"split": "x", "name": None, "value": 1.0}])  # NOT NULL name
    with pytest.raises(StoreError):
        repo.import_runs(engine, [(dict(FIELDS, config_hash="n" * 64), RunRecord(provenance=PROV)),
                                  (dict(FIELDS, config_hash="m" * 64), bad)])
    assert repo.find_completed(engine, "n" * 64) is None


def test_hand_written_prior_round_trips_and_a_general_model_has_none(db_url):
    engine = open_store(db_url)
    sm = RunRecord(provenance=PROV)
    sm.set_prior({"gzip_bytes": 709, "lines": 58, "learned_bits": 69.7})
    rid = repo.create_run(engine, **dict(FIELDS, arch="state-machine", task_specific=True))
    repo.complete_run(engine, rid, sm)
    run = get_run(engine, rid)
    assert (run.prior_gzip_bytes, run.prior_lines, run.prior_learned_bits) == (709, 58, 69.7)
    out = summary(run)
    assert out["prior"] == {"gzip_bytes": 709, "lines": 58, "learned_bits": 69.7} == json_summary(out)["prior"]
    general = RunRecord(provenance=PROV)
    general.set_prior(None)  # what the runner passes for a model without a hand-written prior
    rid = repo.create_run(engine, **dict(FIELDS, config_hash="g" * 64))
    repo.complete_run(engine, rid, general)
    assert summary(get_run(engine, rid))["prior"] == {"gzip_bytes": None, "lines": None, "learned_bits": None}


def test_the_runner_reads_the_prior_from_the_declared_capability_or_the_fit_summary():
    import torch

    from arena.api import HandWrittenPrior
    from arena.train import hand_written_prior

    class Skeleton(torch.nn.Module):
        def hand_written_prior(self):
            return {"gzip_bytes": 300, "lines": 20, "learned_bits": 12.5}

    assert isinstance(Skeleton(), HandWrittenPrior)
    assert hand_written_prior(Skeleton(), {"skeleton_size": {"gzip_bytes": 1}})["gzip_bytes"] == 300
    fitted = {"skeleton_size": {"gzip_bytes": 709, "lines": 58}, "n_learned_bits": 69.7}  # a custom fit()'s summary
    assert hand_written_prior(torch.nn.Linear(2, 2), fitted) == {"gzip_bytes": 709, "lines": 58, "learned_bits": 69.7}
    assert hand_written_prior(torch.nn.Linear(2, 2), {}) is None and hand_written_prior(torch.nn.Linear(2, 2)) is None
