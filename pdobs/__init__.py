"""llm-d P/D observability: config, signal catalog and shared mechanics."""

# The one place the version is written: pyproject.toml reads it from here.
__version__ = "0.1.0"
