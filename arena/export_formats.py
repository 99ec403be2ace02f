"""Export formats and how a format is chosen (stdlib only: the CLI decides before it imports pandas)."""

from __future__ import annotations

from pathlib import Path

from arena.errors import ArenaError

FORMATS = ("csv", "md", "latex", "json", "parquet")
SUFFIX_FORMAT = {".csv": "csv", ".md": "md", ".markdown": "md", ".tex": "latex", ".latex": "latex",
                 ".json": "json", ".parquet": "parquet", ".pq": "parquet"}


def format_for(out: str | Path | None, fmt: str | None) -> str:
    """Explicit ``--format`` wins; otherwise the ``--out`` suffix; otherwise CSV."""
    if fmt:
        fmt = {"markdown": "md", "tex": "latex"}.get(fmt.lower(), fmt.lower())
        if fmt not in FORMATS:
            raise ArenaError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
        return fmt
    if out:
        return SUFFIX_FORMAT.get(Path(out).suffix.lower(), "csv")
    return "csv"
