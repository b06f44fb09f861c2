"""End-to-end workflows that drive both applications: the demo and the cross-run report.

This is the only package that imports both ``pde`` and ``mri`` (they never import each other)."""
