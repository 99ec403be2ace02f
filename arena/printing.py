"""User text on the terminal: printed literally, never interpreted as rich markup.

Run names, errors, task keys, arch names, paths and database URLs come from users or plugins; rich would read
``[/x]`` in them as a closing tag (MarkupError) or ``[red]`` as a style. Everything arena prints with rich goes
through one of these helpers: :func:`lit` inside a markup template, :func:`cell` for table cells and titles,
:func:`template` for a progress-bar column (which is also ``str.format``-ed).
"""

from __future__ import annotations

from typing import Any

from rich.markup import escape
from rich.text import Text


def lit(value: Any) -> str:
    """``value`` as markup that renders to exactly ``str(value)``."""
    return escape(str(value))


def cell(value: Any) -> Text:
    """A table cell or title holding ``value`` literally."""
    return Text(value if isinstance(value, str) else str(value))


def template(value: Any) -> str:
    """Literal text for a rich progress ``TextColumn`` (markup escaped, braces doubled)."""
    return lit(value).replace("{", "{{").replace("}", "}}")


def error_line(exc: BaseException | str, label: str = "error") -> str:
    """``error: <message>`` with the label styled and the message literal."""
    return f"[bold red]{label}:[/] {lit(exc)}"
