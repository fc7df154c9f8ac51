"""evenflow: workflow-orchestrated MLOps for fair, explainable, reproducible tabular models."""
