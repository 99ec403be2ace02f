"""arena-plugin-example: the gla-mini architecture, registered through the ``arena.architectures`` entry point.

Importing this package imports nothing heavy; arena loads ``arena_plugin_example.gla:SPEC`` lazily, on first use.
"""

__version__ = "0.1.0"
