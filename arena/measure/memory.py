"""Peak memory: RSS of this process on CPU (the high-water mark), max allocated on CUDA."""

from __future__ import annotations

import resource
import sys

import torch


def peak_memory_mb(device: str = "cpu") -> float:
    if device.startswith("cuda") and torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 2**10  # bytes on macOS, KiB on Linux
