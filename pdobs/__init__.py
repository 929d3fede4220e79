"""llm-d P/D observability: config, signal catalog and shared mechanics."""
