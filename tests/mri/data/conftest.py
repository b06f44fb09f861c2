"""Small datasets shared by the MRI data tests: simulated once per session with the tiny preset."""
import pytest

from mri.data.presets import PRESETS
from mri.data.simulate import simulate_dataset

# 2 scans × 3 slices of 64×64 with 4 coils: the tiny preset, trimmed
TINY = PRESETS["tiny"].replace(n_scans=2, slices=3)


@pytest.fixture(scope="session")
def tiny_config():
    return TINY


@pytest.fixture(scope="session")
def tiny_sim(tmp_path_factory):
    out = tmp_path_factory.mktemp("mri-sim-tiny")
    simulate_dataset(TINY, out, progress=False)
    return out


@pytest.fixture(scope="session")
def phantom_sim(tmp_path_factory):
    """Phantom source with two echoes and a non-square shape."""
    out = tmp_path_factory.mktemp("mri-sim-phantom")
    config = TINY.replace(source="phantom", echoes=2, shape=(64, 48), n_scans=1, slices=2)
    simulate_dataset(config, out, progress=False)
    return out
