"""Text data for evaluation and calibration: the bundled corpus and the window sources."""
