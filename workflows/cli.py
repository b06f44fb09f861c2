"""Top-level sub-commands `demo` and `report` for run.py."""


def register(groups):
    """Add the `demo` and `report` parsers to run.py's top-level sub-command group."""
