"""MRI data: readers of SKM-TEA (`skmtea.SkmTeaSlices`) and fastMRI (`fastmri.FastMRISlices`) files
that yield the same slice item (`slices`), a realistic multi-coil simulation written in the SKM-TEA
layout (`anatomy`, `coil_maps`, `masks`, `simulate`, `presets`), and the `run.py` commands
(`cli`, `bench`). See datasets/README.md for the formats."""
