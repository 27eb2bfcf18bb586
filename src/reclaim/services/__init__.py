"""Services: what the CLI and the web app both call. They take an engine and ``now``."""
