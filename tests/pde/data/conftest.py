"""Tests of pde.data (generators, writer, readers). Files are named test_pde_data_* so that they never
clash with same-named test modules elsewhere under pytest's default import mode."""
