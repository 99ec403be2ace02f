"""The Streamlit leaderboard (installed as ``arena.leaderboard``): ``arena leaderboard`` starts streamlit_app.py."""
