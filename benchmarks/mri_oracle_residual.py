"""How well the oracle-physics operator (mri.recon.mismatch_sense) explains simulated mismatch data:
relative residual ‖y − A x_true‖ / ‖y‖ of a study-cpu scan simulated at 60 dB SNR with the TRUE coil
maps (maps=true), for the ideal SENSE operator and the oracle one. On the exact track both show the
discretisation floor (the simulation runs on a 2× finer grid and crops k-space; A acts on the
reconstruction grid); on the mismatch track the ideal operator misses the delay and B0.

    python -m benchmarks.mri_oracle_residual [PRESET ...]   (default: study-cpu study-cpu-mismatch)
"""
import sys
import tempfile

import h5py
import torch

from mri.data.presets import PRESETS
from mri.data.simulate import simulate_dataset
from mri.recon.mismatch_sense import MismatchSenseOp
from mri.recon.sense import SenseOp


def residuals(preset: str) -> dict:
    cfg = PRESETS[preset].replace(n_train=1, n_val=0, n_test=0, slices=4, maps="true", snr_db=(60.0,))
    with tempfile.TemporaryDirectory() as tmp:
        simulate_dataset(cfg, tmp, progress=False)
        with h5py.File(f"{tmp}/SIM_000.h5") as f:
            y = torch.from_numpy(f["kspace"][:, :, :, 0, :]).permute(0, 3, 1, 2)  # (S, C, H, W)
            maps = torch.from_numpy(f["maps"][..., 0]).permute(0, 3, 1, 2)
            truth = torch.from_numpy(f["truth"][..., 0])
            key = "mismatch/b0_field_hz"
            field = torch.from_numpy(f[key][()]) if key in f else torch.zeros(y.shape[-2:])
            delay, bw = float(f.attrs["gradient_delay"]), float(f.attrs["readout_bw_hz"])
    n = y.shape[0]
    oracle = MismatchSenseOp(maps, None, field.expand(n, -1, -1), torch.full((n,), delay), torch.full((n,), bw))
    return {name: float((y - op(truth)).norm() / y.norm()) for name, op in (("ideal", SenseOp(maps)),
                                                                            ("oracle", oracle))}


if __name__ == "__main__":
    for preset in sys.argv[1:] or ["study-cpu", "study-cpu-mismatch"]:
        print(preset, residuals(preset))
