"""Before the sandbox starts (light imports only): the exact bytes that will run, and what workers may see."""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from arena.submit.resolve import PluginSource, SubmitInputError


def plugin_request(source: PluginSource, tmp: Path) -> tuple[dict[str, Any], str]:
    """What a worker is told to load, and the file that will run (for a single file: a private copy of exactly
    the bytes that were hashed, readable by the sandbox's uid)."""
    if source.kind != "file":
        return ({"kind": "package", "arch": source.arch, "entry_point": source.entry_point, "dist": source.name,
                 "version": source.version}, source.path)
    data = Path(source.path).read_bytes()
    if hashlib.sha256(data).hexdigest() != source.sha256:
        raise SubmitInputError(f"{source.path} changed while it was being submitted; try again")
    folder = tmp / "plugin"
    folder.mkdir()
    code_path = folder / Path(source.path).name
    code_path.write_bytes(data)
    os.chmod(tmp, 0o755)
    os.chmod(folder, 0o755)
    os.chmod(code_path, 0o644)
    return {"kind": "file", "file": str(code_path), "arch": source.arch}, str(code_path)


def visible_paths(url: str, code_path: str) -> tuple[list[str], list[str]]:
    """Folders hidden from the workers (the parent's own: cwd, home, temp, the database's folder) and folders
    they must still read (arena's code, the Python installation and import path, the plugin)."""
    import arena
    import arena.architectures
    import arena.tasks

    hide = [os.getcwd(), str(Path.home()), tempfile.gettempdir()]
    if url.startswith("sqlite:///") and not url.endswith(":memory:"):
        hide.append(str(Path(url[len("sqlite:///"):]).resolve().parent))
    keep = [*arena.__path__, *arena.architectures.__path__, *arena.tasks.__path__, sys.prefix, sys.base_prefix,
            sys.exec_prefix, *(p for p in sys.path if p and os.path.isdir(p)), code_path]
    return hide, [str(Path(k).resolve()) for k in keep]
