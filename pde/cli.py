"""Sub-commands of the `pde` package for run.py (handlers import heavy modules lazily)."""


def register(data, pde, bench):
    """Add this package's parsers to the `data`, `pde` and `bench` sub-command groups."""
