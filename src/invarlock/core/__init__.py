"""Core types shared by plugins, the runner and the CLI (no torch at import time)."""
