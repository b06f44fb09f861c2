"""Sub-commands of the `pde` package for run.py: data presets and benchmarks come from `pde.data`,
training / evaluation / comparison from `pde.experiments`."""


def register(data, pde, bench):
    """Add this package's parsers to run.py's `data`, `pde` and `bench` groups."""
    from pde.data.cli import register as register_data
    from pde.experiments.cli import register as register_experiments

    register_data(data=data, bench=bench)
    register_experiments(pde=pde, bench=bench)
