"""Built-in architectures, one file each. Installed as ``arena.architectures``; listed in arena.registry."""
