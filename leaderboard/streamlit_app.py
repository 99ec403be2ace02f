"""arena leaderboard: a read-only Streamlit multipage app over the runs database.

Start it with ``arena leaderboard [--db URL] [--address A] [--port P]``; the database URL arrives in
``$ARENA_DB_URL``. Pages live in ``app_pages/`` and share the cached read-only engine of ``ui.py``.
"""

from __future__ import annotations

import streamlit as st

import arena
from arena.leaderboard import queries, ui

st.set_page_config(page_title="arena leaderboard", page_icon=":material/leaderboard:", layout="wide")

pages = [
    st.Page("app_pages/leaderboard.py", title="Leaderboard", icon=":material/leaderboard:", default=True),
    st.Page("app_pages/pareto.py", title="Pareto", icon=":material/scatter_plot:"),
    st.Page("app_pages/depth.py", title="Depth", icon=":material/stacked_line_chart:"),
    st.Page("app_pages/lr_robustness.py", title="LR robustness", icon=":material/tune:"),
    st.Page("app_pages/run_detail.py", title="Run detail", icon=":material/description:"),
    st.Page("app_pages/glossary.py", title="Glossary", icon=":material/menu_book:"),
]
page = st.navigation(pages, position="top")  # the whole width for the tables; no sidebar
page.run()
st.divider()
st.caption(f"arena {arena.__version__} · methodology v{arena.METHODOLOGY_VERSION} · database "
           f"{queries.safe_md(queries.db_label(ui.db_url()))}")
