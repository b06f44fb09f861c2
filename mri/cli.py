"""Sub-commands of the `mri` package for run.py: simulation and reader benchmarks come from
`mri.data`, reconstruction training / evaluation / comparison from `mri.recon`."""


def register(data, mri, bench):
    """Add this package's parsers to run.py's `data`, `mri` and `bench` groups."""
    from mri.data.cli import register as register_data
    from mri.recon.cli import register as register_recon

    register_data(data=data, bench=bench)
    register_recon(mri=mri, bench=bench)
