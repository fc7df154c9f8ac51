"""Operating evenflow: the local server stack and deployments."""
