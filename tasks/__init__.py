"""Built-in tasks, one family per file. Installed as ``arena.tasks``; listed in arena.registry."""
