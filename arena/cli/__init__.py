from arena.cli.app import main  # noqa: F401
