"""arena: capability per parameter, per FLOP and per millisecond, measured side by side."""

from arena.api import (
    ArchConfig,
    ArchSpec,
    ChannelSpec,
    Example,
    ModelShape,
    SizePreset,
    Task,
    TaskConfig,
    TaskSpec,
    Vocab,
    arch_spec,
)

__version__ = "0.1.0"
METHODOLOGY_VERSION = "1"

__all__ = ["ArchConfig", "ArchSpec", "ChannelSpec", "Example", "ModelShape", "SizePreset", "Task", "TaskConfig",
           "TaskSpec", "Vocab", "arch_spec", "__version__", "METHODOLOGY_VERSION"]
