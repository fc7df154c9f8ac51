"""Data in and out: reading batches, typed features, splits and shards, DVC versions, synthetic data."""
