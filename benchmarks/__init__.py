"""Ratio benchmarks: every figure compares two things measured in the same run on the same data."""
