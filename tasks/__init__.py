"""Prefect tasks: thin wrappers (retries, caching, names, artifacts) over the evenflow core."""
