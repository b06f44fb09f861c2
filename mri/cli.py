"""Sub-commands of the `mri` package for run.py (handlers import heavy modules lazily)."""


def register(data, mri, bench):
    """Add this package's parsers to the `data`, `mri` and `bench` sub-command groups."""
