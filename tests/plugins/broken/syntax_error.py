"""Broken on purpose: not valid Python (a missing closing parenthesis)."""

from arena import ArchConfig, arch_spec


class Cfg(ArchConfig:
    pass
