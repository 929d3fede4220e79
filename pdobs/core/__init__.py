"""Core: config, PromQL text, query context, the signal engine. Imports nothing else of the project."""
