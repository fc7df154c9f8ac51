"""Configuration: run parameters, monitoring policy and environment settings, as pydantic models."""
