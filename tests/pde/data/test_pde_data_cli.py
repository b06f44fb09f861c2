"""run.py wiring: one `data` sub-command per preset, and `bench data`."""
import numpy as np

import run
from pde.data.presets import PRESETS
from pde.data.readers import load_dataset


def test_every_preset_is_a_data_subcommand():
    parser = run.build_parser()
    for name in PRESETS:
        args = parser.parse_args(["data", name, "--n", "3", "--seed", "1"])
        assert args.preset == name and args.n == 3 and args.seed == 1
    args = parser.parse_args(["bench", "data", "--dt-study", "--study-res", "32"])
    assert args.dt_study and args.study_res == 32


def test_data_command_writes_the_requested_file(tmp_path):
    out = tmp_path / "ns.h5"
    assert run.main(["data", "ns-tiny", "--n", "2", "--res", "16", "--gen-res", "32", "--dt", "0.25", "--out", str(out)]) == 0
    data = load_dataset(out)
    assert data["a"].shape == (2, 16, 16) and data["u"].shape == (2, 16, 16, 15)
    assert np.allclose(data["t"], np.arange(1, 16) * 0.5)
