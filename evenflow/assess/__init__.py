"""What a model is worth: metrics with intervals, fairness by group, drift, explanations, baselines, mitigations."""
