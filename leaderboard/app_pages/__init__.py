"""Leaderboard pages (run by st.navigation from streamlit_app.py)."""
