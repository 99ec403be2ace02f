"""Broken on purpose: imports a module that does not exist."""

import arena_no_such_dependency_xyz  # noqa: F401  (the defect)

from arena import ArchConfig


class Cfg(ArchConfig):
    pass
