"""AppTest of every page on a missing, an empty, a small (with hostile metadata) and a 10,000-run database."""

from __future__ import annotations

import time

import pytest
from _lb_helpers import PAGES, XSS_ARCH, XSS_PLUGIN, app_test, walk

import arena
from arena.export import leaderboard_frame
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


def test_leaderboard_page_shows_the_export_table_and_downloads(small_db):
    url, ids = small_db
    at = render("leaderboard")
    assert_clean(at)
    expected = leaderboard_frame(open_store(url, readonly=True))
    table = at.dataframe[0].value
    assert len(table) == len(expected) > 10
    assert set(table["arch"]) == set(expected["arch"])
    assert {"norm_per_mparam", "norm_per_gflop", "norm_per_ms", "pareto_params"} <= set(table.columns)
    # sorted by the chosen ratio: the first row has the best normalized score per parameter
    assert table["norm_per_mparam"].iloc[0] == expected["norm_per_mparam"].max()
    assert len(at.get("download_button")) == 3


def test_leaderboard_gate_and_filters_change_the_table(small_db):
    at = render("leaderboard")
    n_ratio = at.dataframe[0].value["norm_per_mparam"].notna().sum()
    at.slider(key="lb_gate").set_value(0.0).run()
    table = at.dataframe[0].value
    assert table["norm_per_mparam"].notna().sum() > n_ratio
    # even with the gate at 0 a chance-level model gets no ratio and no combined score
    chance = table[table["arch"] == "chance-sm"]
    assert len(chance) and chance["norm_per_mparam"].isna().all() and chance["combined"].isna().all()
    at.multiselect(key="lb_tasks").set_value(["nested-parity"]).run()
    assert set(at.dataframe[0].value["task"]) == {"nested-parity"}
    at.radio(key="lb_axis").set_value("latency").run()
    assert_clean(at)
    table = at.dataframe[0].value
    assert table.columns[11] == "norm_per_ms"  # the chosen axis's ratio comes first among the ratios
    first = table.iloc[0]
    assert first["run"] == f"run_detail?run={first['run_ids'].split(',')[0]}"


def test_pareto_depth_glossary_pages(small_db):
    url, _ = small_db
    at = render("pareto")
    assert_clean(at)
    assert len(at.get("vega_lite_chart")) == 1
    front = at.dataframe[0].value
    assert len(front) >= 1 and "chance-sm" not in set(front["arch"])
    at.radio(key="pa_axis").set_value("latency").run()
    assert_clean(at)
    assert at.selectbox(key="pa_hw").value == "AMD EPYC x1t"

    at = render("depth")
    assert_clean(at)
    assert len(at.get("vega_lite_chart")) == 1
    assert set(at.dataframe[0].value["depth"]) == {5, 6, 7, 8}  # nested-parity, the first task
    at.selectbox(key="de_task").set_value("scan-depth").run()
    assert_clean(at)
    depths = at.dataframe[0].value
    assert set(depths["depth"]) == {4, 5, 6} and at.selectbox(key="de_split").value == "test_ood"
    assert {"rnn", "mamba", XSS_ARCH} <= set(depths["arch"])

    at = render("glossary")
    assert_clean(at)
    values = {m.label: m.value for m in at.metric}
    assert values["methodology version"] == arena.METHODOLOGY_VERSION
    assert values["last updated (newest run)"].startswith("2026-01-")
    assert "Normalized score" in texts(at) and "p50" in texts(at)


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
    assert_clean(at)
    assert XSS_ARCH in set(at.dataframe[0].value["arch"])  # data in the grid, rendered as text by the grid


@pytest.mark.slow
@pytest.mark.parametrize("page", PAGES)
def test_pages_on_10000_runs(big_db_url, monkeypatch, page):
    monkeypatch.setenv("ARENA_DB_URL", big_db_url)
    t0 = time.perf_counter()
    at = render(page, {"run": "10000"} if page == "run_detail" else None, timeout=300)
    assert_clean(at)
    if page == "leaderboard":
        table = at.dataframe[0].value
        assert len(table) == 30 and table["n"].sum() == 10_000
    if page in ("pareto", "depth", "run_detail"):
        assert len(at.get("vega_lite_chart")) >= 1
    print(f"{page}: {time.perf_counter() - t0:.1f} s")
