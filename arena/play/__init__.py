"""Playing policies: the one runner every match goes through (arena/play/runner.py)."""
