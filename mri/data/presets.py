"""Settings of the MRI simulation and its named presets."""
import dataclasses
from dataclasses import dataclass


@dataclass(frozen=True)
class SimConfig:
    """Everything that determines a simulated dataset (stored in every file and in meta.json).

    shape: (H, W) = (ky, kz) of each slice. slices / n_scans: per scan / in total. coils: birdcage
    coils. echoes: 1 or 2 (the second a darker, T2-weighted echo). accelerations: Poisson-disc masks
    stored per scan. snr_db: per-coil SNR in dB, one value or a (low, high) range drawn per scan (see
    simulate.add_noise). source: "mni" or "phantom". contrasts: cycled over scans (echo 0).
    oversample: anatomy and coils are simulated on a grid this many times finer and k-space is cropped
    (no inverse crime). calib: calibration box side (None: 24, smaller for small shapes, see
    masks.calibration_width). espirit_max_iter: ESPIRiT power iterations. seed: everything is drawn
    from (seed, scan index), so scans can be generated in any order and resumed.
    """
    shape: tuple = (256, 256)
    slices: int = 16
    n_scans: int = 8
    coils: int = 8
    echoes: int = 1
    accelerations: tuple = (2.0, 3.0, 4.0, 6.0, 8.0)
    snr_db: tuple = (25.0, 35.0)
    source: str = "mni"
    contrasts: tuple = ("t1", "pd", "t2")
    oversample: int = 2
    calib: int | None = None
    espirit_max_iter: int = 100
    seed: int = 0

    def replace(self, **changes) -> "SimConfig":
        """A copy with the given fields changed; None values are ignored (unset CLI options)."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}


PRESETS = {
    # tests and the demo: a few seconds on a laptop CPU
    "tiny": SimConfig(shape=(64, 64), slices=4, n_scans=3, coils=4, accelerations=(2.0, 4.0),
                      espirit_max_iter=30),
    # the default: 8 scans of 16 brain slices at 256×256 with 8 coils
    "default": SimConfig(),
    # SKM-TEA's (ky, kz) matrix, two echoes and its accelerations
    "skmtea-like": SimConfig(shape=(512, 160), echoes=2, accelerations=(4.0, 6.0, 8.0, 10.0, 12.0, 16.0)),
}
