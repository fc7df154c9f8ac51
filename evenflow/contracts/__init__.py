"""Data contracts: Great Expectations suites inferred and checked, checks run before anything starts."""
