"""What the numbers were measured on: latency is only comparable within one machine."""

from __future__ import annotations

import os
import platform
import socket
import subprocess
from functools import lru_cache
from importlib import metadata
from pathlib import Path

import torch

PACKAGES = ("torch", "numpy", "pydantic", "sqlalchemy", "alembic", "typer", "pandas", "lm_eval", "streamlit",
            "dask", "mamba_ssm", "causal_conv1d", "flash_attn")


@lru_cache(maxsize=1)
def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def hardware(device: str = "cpu") -> dict[str, object]:
    info: dict[str, object] = {
        "device": device, "cpu": cpu_model(), "cores": os.cpu_count(), "threads": torch.get_num_threads(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"), "torch": torch.__version__,
        "platform": platform.platform(), "host": socket.gethostname(),
    }
    if device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def hardware_label(hw: dict) -> str:
    gpu = hw.get("gpu")
    return f"{gpu}" if gpu else f"{hw.get('cpu')} x{hw.get('threads')}t"


@lru_cache(maxsize=1)
def package_versions() -> dict[str, str]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name.replace("_", "-"))
        except metadata.PackageNotFoundError:
            try:
                out[name] = metadata.version(name)
            except metadata.PackageNotFoundError:
                continue
    return out


@lru_cache(maxsize=1)
def git_commit() -> tuple[str | None, bool | None]:
    root = Path(__file__).resolve().parents[2]
    try:
        sha = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=5).stdout.strip() or None
        dirty = bool(subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                                    capture_output=True, text=True, timeout=5).stdout.strip()) if sha else None
        return sha, dirty
    except (OSError, subprocess.SubprocessError):
        return None, None
