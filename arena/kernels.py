"""Which optional CUDA fast paths are importable (the ``cuda`` extra: mamba-ssm, causal-conv1d, flash-attn).

Every import here is guarded: a CPU install never needs these packages, and a broken GPU install (e.g. mamba-ssm
built without its ``selective_scan_cuda`` extension, or a Triton mismatch) is reported, not raised. Importing
``mamba_ssm`` pulls in Triton modules, so nothing is imported until :func:`available_kernels` (or a loader) is
called; results are cached per process.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable
from functools import cache
from typing import Any

# name -> (distribution to report, the module that proves the fast path works)
KERNELS: dict[str, tuple[str, str]] = {
    "mamba_ssm": ("mamba_ssm", "mamba_ssm.ops.selective_scan_interface"),
    "causal_conv1d": ("causal_conv1d", "causal_conv1d"),
    "flash_attn": ("flash_attn", "flash_attn"),
}


@cache
def _probe(name: str) -> tuple[bool, str]:
    """(importable, version or reason)."""
    package, module = KERNELS[name]
    if importlib.util.find_spec(package) is None:
        return False, "not installed"
    try:
        importlib.import_module(module)
        top = importlib.import_module(package)
    except Exception as exc:  # an installed but broken extension must not take the CPU path down
        return False, f"installed but not importable: {type(exc).__name__}: {exc}"
    return True, str(getattr(top, "__version__", "unknown version"))


def available_kernels() -> dict[str, bool | str]:
    """``{"cuda": bool, "mamba_ssm": version | False, ...}``: a version string means the fast path is importable.

    ``cuda`` says whether torch sees a GPU; the kernels are only used when it is true and the tensors are on it.
    """
    import torch

    out: dict[str, bool | str] = {"cuda": bool(torch.cuda.is_available())}
    for name in KERNELS:
        ok, info = _probe(name)
        out[name] = info if ok else False
    return out


def kernel_reasons() -> dict[str, str]:
    """Why each kernel is or is not available (for ``arena doctor``'s detail column)."""
    return {name: _probe(name)[1] for name in KERNELS}


def load_selective_scan() -> Callable[..., Any]:
    """``mamba_ssm``'s ``selective_scan_fn``, or an ``ArenaError`` saying why it cannot be used."""
    from arena.errors import ArenaError

    ok, info = _probe("mamba_ssm")
    if not ok:
        raise ArenaError(f"mamba backend 'cuda' needs mamba-ssm's selective_scan kernel ({info}); install it with "
                         "`MAMBA_KEEP_CUDA_BUILD=TRUE pip install mamba-ssm --no-build-isolation` on a CUDA "
                         "machine, or use backend='pscan'/'seq'")
    from mamba_ssm.ops.selective_scan_interface import selective_scan_fn

    return selective_scan_fn


__all__ = ["available_kernels", "kernel_reasons", "load_selective_scan"]
