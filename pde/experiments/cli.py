"""run.py sub-commands of this sub-package (filled in by its issue)."""


def register(**groups):
    """Add parsers to the run.py groups passed by keyword."""
