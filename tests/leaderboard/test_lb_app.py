"""AppTest of every page on a missing, an empty, a small (with hostile metadata) and a 10,000-run database."""

from __future__ import annotations

import time

import pandas as pd
import pyarrow as pa
import pytest
from _lb_helpers import PAGES, XSS_ARCH, XSS_PLUGIN, app_test, walk

import arena
from arena.export import leaderboard_frame
from arena.leaderboard.synthetic import seed_database
from arena.store.engine import open_store


def render(page: str, query: dict | None = None, timeout: float = 120):
    at = app_test(timeout)
    at.run()
    if page != "leaderboard":
        at.switch_page(f"app_pages/{page}.py")
    if query:
        at.query_params.update(query)
    if page != "leaderboard" or query:
        at.run()
    return at


def assert_clean(at) -> None:
    assert not at.exception, [e.value for e in at.exception]
    for el in walk(at.main):  # no element may render raw HTML
        proto = getattr(el, "proto", None)
        assert not getattr(proto, "allow_html", False), el
        assert not getattr(proto, "unsafe_allow_html", False), el


def texts(at) -> str:
    out = []
    for el in walk(at.main):
        for attr in ("value", "body", "label"):
            v = getattr(el, attr, None)
            if isinstance(v, str):
                out.append(v)
        proto = getattr(el, "proto", None)
        for attr in ("body", "text", "code_text"):
            v = getattr(proto, attr, None)
            if isinstance(v, str):
                out.append(v)
    return "\n".join(out)


@pytest.mark.parametrize("page", PAGES)
def test_page_without_a_database_file_explains_what_to_do(missing_db, page):
    at = render(page)
    assert_clean(at)
    if page != "glossary":
        assert any("No results to show yet" in i.value for i in at.info)
        assert "does not exist" in texts(at)
    assert not at.dataframe


@pytest.mark.parametrize("page", PAGES)
def test_page_on_an_empty_database(empty_db, page):
    at = render(page)
    assert_clean(at)
    if page == "glossary":
        assert any(m.value == "never" for m in at.metric)
    else:
        assert any("no completed runs" in i.value for i in at.info)
    assert not at.dataframe


@pytest.mark.parametrize("page", ["leaderboard", "run_detail"])
def test_page_on_a_file_that_is_not_a_database(tmp_path, monkeypatch, page):
    bad = tmp_path / "notes.db"
    bad.write_bytes(b"this is not an SQLite file" * 100)
    monkeypatch.setenv("ARENA_DB_URL", f"sqlite:///{bad}")
    at = render(page)
    assert_clean(at)
    assert at.error and "Cannot read the database" in at.error[0].value
    assert any("not a database" in c.value for c in at.code)


def shown(at, i: int = 0) -> pd.DataFrame:
    """What the grid displays (the Styler's display text), as strings."""
    styler = at.dataframe[i].proto.arrow_data.styler
    return pa.ipc.open_stream(styler.display_values).read_all().to_pandas().astype(str)


RATIOS = ["norm_per_mparam", "norm_per_gflop", "norm_per_ms"]


def test_leaderboard_page_shows_one_task_ranked_with_honest_blanks(small_db):
    url, ids = small_db
    at = render("leaderboard")
    assert_clean(at)
    assert at.selectbox(key="lb_task").value == "nested-parity · np-mem"  # the first task; one per view
    expected = leaderboard_frame(open_store(url, readonly=True), task="nested-parity")
    table, text = at.dataframe[0].value, shown(at)
    assert len(table) == len(expected) > 10 and set(table["arch"]) == set(expected["arch"])
    assert list(table.columns[:7]) == ["rank", "arch", "size", "score_text", *RATIOS]  # rank, score, ratios first
    # ranked by score per parameter among general models; the 164-parameter task-specific model is not ranked
    general = expected[~expected["task_specific"]]
    assert table["rank"].iloc[0] == 1 and table["norm_per_mparam"].iloc[0] == general["norm_per_mparam"].max()
    ts = table["arch"] == "chance-sm"
    assert ts.sum() == 3 and table.loc[ts, "rank"].isna().all()
    assert (text.loc[ts, "norm_per_mparam"] == "— task-specific").all()
    below = expected.set_index(["arch", "size", "variant"])["normalized_mean"].lt(0.5)
    n_below = int(below[~below.index.get_level_values(0).isin(["chance-sm"])].sum())
    assert (text["norm_per_mparam"] == "— below gate").sum() == n_below > 0
    assert text["score_text"].str.fullmatch(r"\d\.\d{3}( ± \d\.\d{3})?").all()
    assert not text.isin(["None", "nan", "-inf", "inf"]).any(axis=None)  # never a raw blank
    assert (text.loc[ts, "badges"].str.contains("task-specific")).all()
    assert len(at.get("download_button")) == 3


def test_leaderboard_shows_the_hand_written_prior_beside_params(small_db):
    at = render("leaderboard")
    assert_clean(at)
    table, text = at.dataframe[0].value, shown(at)
    cols = list(table.columns)
    assert cols.index("prior") == cols.index("params_total") + 1 > cols.index("norm_per_ms")  # after the ratios
    ts = table["arch"] == "chance-sm"
    assert ts.sum() == 3 and (text.loc[ts, "prior"] == "709 B gzip · 58 lines · 69.7 bits").all()
    assert (table.loc[ts, "prior"] == 709).all()  # sorts by the skeleton's gzip bytes
    assert (text.loc[~ts, "prior"] == "— no prior").all()  # a general model: no hand-written prior, said so


def test_leaderboard_gate_rank_toggle_search_and_task(small_db):
    at = render("leaderboard")
    n_ranked = at.dataframe[0].value["rank"].notna().sum()
    at.slider(key="lb_gate").set_value(0.0).run()
    table = at.dataframe[0].value
    assert table["rank"].notna().sum() > n_ranked
    at.toggle(key="lb_ts").set_value(True).run()  # included, but at chance: still no ratio
    text = shown(at)
    chance = at.dataframe[0].value["arch"] == "chance-sm"
    assert (text.loc[chance, "norm_per_mparam"] == "— below gate").all()
    at.radio(key="lb_rank").set_value("latency").run()
    assert_clean(at)
    table = at.dataframe[0].value
    ranked = table[table["rank"].notna()]
    assert ranked["norm_per_ms"].is_monotonic_decreasing and ranked["rank"].iloc[0] == 1
    first = table.iloc[0]
    assert first["run"].startswith("run_detail?run=")
    at.text_input(key="lb_search").set_value("mamba base").run()
    assert set(at.dataframe[0].value["arch"]) == {"mamba"} and set(at.dataframe[0].value["size"]) == {"base"}
    at.text_input(key="lb_search").set_value("").run()
    at.selectbox(key="lb_task").set_value("scan-depth · depth").run()
    assert_clean(at)
    assert at.subheader[0].value == "scan-depth · depth"
    assert any(c.value.startswith(r"Score: exact\_match on test\_ood") for c in at.caption)
    at.multiselect(key="lb_cols").set_value(["normalized_mean", "hardware", "lr"]).run()
    assert {"normalized_mean", "hardware", "lr", "latency_range"} <= set(at.dataframe[0].value.columns)


def test_pareto_depth_lr_glossary_pages(small_db):
    url, _ = small_db
    at = render("pareto")
    assert_clean(at)
    assert len(at.get("vega_lite_chart")) == 2  # the front and the score-vs-latency bubbles
    front = at.dataframe[0].value
    assert len(front) >= 1 and "chance-sm" not in set(front["arch"])
    assert any("task-specific rows hidden" in c.value for c in at.caption)
    spec = at.get("vega_lite_chart")[0].proto.spec
    assert '"domain": [' in spec or '"domain":[' in spec  # padded, explicit axis domains
    at.radio(key="pa_axis").set_value("latency").run()
    assert_clean(at)
    assert at.selectbox(key="pa_hw").value == "AMD EPYC x1t"

    at = render("depth")
    assert_clean(at)
    assert len(at.get("vega_lite_chart")) == 1
    assert at.selectbox(key="de_split_nested-parity_np-mem").value == "test_iid + test_ood"
    assert set(at.dataframe[0].value["depth"]) == {1, 2, 3, 5, 6, 7, 8}  # nested-parity: iid then ood depths
    at.selectbox(key="de_task").set_value("scan-depth · depth").run()
    assert_clean(at)
    assert at.selectbox(key="de_metric_scan-depth_depth").value == "exact_match"  # the task's own headline
    depths = at.dataframe[0].value
    assert set(depths["depth"]) == {1, 2, 3, 4, 5, 6}

    at = render("lr_robustness")
    assert_clean(at)
    assert any("No learning-rate grids yet" in i.value for i in at.info)  # one LR per row in this database

    at = render("glossary")
    assert_clean(at)
    values = {m.label: m.value for m in at.metric}
    assert values["methodology version"] == arena.METHODOLOGY_VERSION
    assert values["last updated (newest run)"].startswith("2026-01-")
    assert "Normalized score" in texts(at) and "p50" in texts(at)


def test_lr_robustness_counts_the_grid_and_chooses_on_validation(tmp_path, monkeypatch):
    from arena.leaderboard import queries
    from arena.leaderboard.synthetic import LR_TOLERANCE

    url = f"sqlite:///{tmp_path / 'grid.db'}"
    lrs = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2)
    seed_database(url, 2 * 5 * 2 * 3 * len(lrs), lrs=lrs).dispose()  # 2 seeds of every arch x task x size x lr
    monkeypatch.setenv("ARENA_DB_URL", url)
    at = render("lr_robustness")
    assert_clean(at)
    at.selectbox(key="lr_size").set_value("base").run()
    table = at.dataframe[0].value.set_index(["task", "arch"])
    assert set(table["LRs"] if "LRs" in table else table["n_lrs"]) == {5}
    # independent count: rows of the export whose normalized mean reaches the gate, per arch, on scan-depth
    frame = leaderboard_frame(open_store(url, readonly=True), task="scan-depth")
    base = frame[frame["size"] == "base"]
    for arch in ("rnn", "mamba"):
        reach = int(base.loc[base["arch"] == arch, "normalized_mean"].ge(0.5).sum())
        assert table.loc[("scan-depth", arch), "reach"] == pytest.approx(100 * reach / 5)
    # the synthetic mamba tolerates a wider LR range than the LSTM; the robustness view must show it
    assert LR_TOLERANCE["mamba"] > LR_TOLERANCE["rnn"]
    assert table.loc[("scan-depth", "mamba"), "reach"] > table.loc[("scan-depth", "rnn"), "reach"]
    assert table.loc[("scan-depth", "mamba"), "best_val_lr"] == 0.003  # the synthetic optimum, found on val
    assert len(at.get("vega_lite_chart")) == 1
    _ = queries


def test_succinctness_curves_from_csv(small_db, tmp_path, monkeypatch):
    (tmp_path / "succ").mkdir()
    monkeypatch.setenv("ARENA_RESULTS_DIR", str(tmp_path / "succ"))
    (tmp_path / "succ" / "succinctness_scan.csv").write_text(
        "task,arch,depth,p_star,state_size,flops,reached\n"
        "scan-depth,rnn,1,1000,64,2e6,true\nscan-depth,rnn,2,4000,64,8e6,true\n"
        "scan-depth,transformer,1,2000,512,4e6,true\nscan-depth,transformer,2,0,512,0,false\n")
    (tmp_path / "succ" / "succinctness_bad.csv").write_text("task,arch\nx,y\n")
    at = render("depth")
    assert_clean(at)
    assert len(at.get("vega_lite_chart")) == 2
    assert any("succinctness_bad.csv: missing columns" in w.value for w in at.warning)
    missed = at.dataframe[-1].value
    assert list(missed["arch"]) == ["transformer"] and not missed["reached"].any()


def test_run_detail_shows_reproduce_command_curve_and_slices(small_db):
    url, ids = small_db
    at = render("run_detail", {"run": "3"})
    assert_clean(at)
    assert at.selectbox(key="rd_run").value == 3
    code = [c.value for c in at.code]
    assert any(c.startswith("arena run --arch ") and "--seed" in c for c in code)
    assert len(at.get("vega_lite_chart")) == 1  # the training curve
    slices = at.dataframe[0].value
    assert {"test_ood", "test_iid"} <= set(slices["split"]) and "depth" in set(slices["slice"])
    at = render("run_detail", {"run": str(ids["failed"])})
    assert_clean(at)
    assert any("<b>boom</b>" in c.value for c in at.code)  # the error, verbatim, in a code block


def test_hostile_metadata_is_shown_as_text_never_html(small_db):
    url, ids = small_db
    at = render("run_detail", {"run": str(ids["hostile"])})
    assert_clean(at)
    plain = [t.value for t in at.text]
    assert any(XSS_ARCH in t for t in plain) and any(XSS_PLUGIN in t for t in plain)
    for el in walk(at.main):  # wherever Markdown is used (everything but st.text, st.code, st.json), the payload is escaped
        body = getattr(getattr(el, "proto", None), "body", "")
        if isinstance(body, str) and getattr(el, "type", "") not in ("text", "code", "json"):
            assert "<script" not in body and "<img" not in body
    at = render("leaderboard")
    at.selectbox(key="lb_task").set_value("scan-depth · depth").run()
    assert_clean(at)
    assert XSS_ARCH in set(at.dataframe[0].value["arch"])  # data in the grid, rendered as text by the grid
    text = shown(at)
    assert (text.loc[text["arch"] == XSS_ARCH, "badges"].str.contains("plugin")).all()


@pytest.mark.slow
@pytest.mark.parametrize("page", PAGES)
def test_pages_on_10000_runs(big_db_url, monkeypatch, page):
    monkeypatch.setenv("ARENA_DB_URL", big_db_url)
    t0 = time.perf_counter()
    at = render(page, {"run": "10000"} if page == "run_detail" else None, timeout=300)
    assert_clean(at)
    if page == "leaderboard":
        table = at.dataframe[0].value
        expected = leaderboard_frame(open_store(big_db_url, readonly=True), task="nested-parity")
        assert len(table) == len(expected) == 15 and table["n"].sum() == expected["n"].sum() == 4_999  # 1 task of 2
    if page in ("pareto", "depth", "run_detail"):
        assert len(at.get("vega_lite_chart")) >= 1
    print(f"{page}: {time.perf_counter() - t0:.1f} s")


def test_run_detail_shows_the_measurement_history(tmp_path, monkeypatch):
    from arena.leaderboard.synthetic import add_run

    url = f"sqlite:///{tmp_path / 'hist.db'}"
    engine = seed_database(url, 0)
    old = {"latency_p50_ms": 30.3, "latency_p90_ms": 41.0, "memory_mb": 1670.0, "load_avg_1m": 11.2,
           "hardware": {"cpu": "AMD EPYC", "threads": 1}, "measured_at": "2026-01-01T00:00:00+00:00"}
    rid = add_run(engine, latency_p50_ms=9.7, memory_mb=420.0,
                  extra={"measurements": [old], "remeasured_at": "2026-02-01T00:00:00+00:00"})
    monkeypatch.setenv("ARENA_DB_URL", url)
    at = render("run_detail", {"run": str(rid)})
    assert_clean(at)
    history = next(d.value for d in at.dataframe if "in use" in d.value.columns)
    assert history["latency_p50_ms"].tolist() == [9.7, 30.3] and history["in use"].tolist() == [True, False]
    assert history["memory_mb"].tolist() == [420.0, 1670.0] and history["load_avg_1m"].iloc[1] == 11.2
