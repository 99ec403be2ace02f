"""Parameter counts: declared (analytic) vs counted, split into embedding / non-embedding / active."""

from __future__ import annotations

from torch import nn

from arena.api import ArchConfig, ArchSpec, ModelShape
from arena.blocks import analytic_params


def count_params(model: nn.Module) -> int:
    """Unique parameters (tied weights once)."""
    return sum(p.numel() for p in model.parameters())


def measure_params(spec: ArchSpec, shape: ModelShape, cfg: ArchConfig, model: nn.Module) -> dict[str, int]:
    declared = analytic_params(spec, shape, cfg)
    counted = count_params(model)
    if counted != declared["total"]:
        raise ValueError(f"architecture {spec.name!r} declares {declared['total']:,} parameters but its module has "
                         f"{counted:,}: fix its params() formula (the leaderboard only shows honest counts)")
    return declared
