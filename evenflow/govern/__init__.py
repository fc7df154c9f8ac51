"""Decisions about models: gates, promotion and the ledger, lineage, code closures for cache keys."""
