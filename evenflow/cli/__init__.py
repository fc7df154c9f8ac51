"""The command line: parses arguments, calls flows and use cases."""
