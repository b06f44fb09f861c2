"""Top-level sub-commands `demo` and `report` for run.py (filled in by the end-to-end issue)."""


def register(groups):
    """Add the `demo` and `report` parsers to run.py's top-level sub-command group."""
