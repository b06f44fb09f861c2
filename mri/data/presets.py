"""Settings of the MRI simulation, their validation, and the named presets."""
import dataclasses
from dataclasses import dataclass

from common.errors import ConfigError

# field → the run.py option that sets it, so validation errors name what the user typed
OPTION = {"shape": "--shape", "slices": "--slices", "n_train": "--n-train-scans", "n_val": "--n-val-scans",
          "n_test": "--n-test-scans", "coils": "--coils", "echoes": "--echoes", "accelerations": "--accelerations",
          "snr_db": "--snr", "source": "--source", "contrasts": "contrasts", "oversample": "oversample",
          "calib": "calib", "espirit_max_iter": "espirit_max_iter", "seed": "--seed",
          "b0_hz": "--mismatch b0", "gradient_delay": "--mismatch delay", "readout_bw_hz": "--mismatch bw",
          "maps": "--mismatch maps"}
MIN_CALIB = 8  # ESPIRiT needs a kernel ≥ 4 (coil_maps.espirit_kernel) inside the box


def default_split_counts(n_scans: int) -> tuple[int, int, int]:
    """(n_train, n_val, n_test) for a bare scan count: test ≈ n/4 and val ≈ n/8 (each ≥ 1 once there are
    enough scans: 1 → (1, 0, 0), 2 → (1, 0, 1), 3 → (1, 1, 1), 6 → (3, 1, 2), 20 → (13, 2, 5))."""
    if n_scans < 1:
        raise ConfigError(f"--n-scans must be ≥ 1, got {n_scans}")
    n_test = max(1, round(n_scans / 4)) if n_scans >= 2 else 0
    n_val = max(1, round(n_scans / 8)) if n_scans >= 3 else 0
    return n_scans - n_val - n_test, n_val, n_test


@dataclass(frozen=True)
class SimConfig:
    """Everything that determines a simulated dataset (stored in every file and in meta.json).

    shape: (H, W) = (ky, kz) of each slice (even, ≥ 16). slices: per scan. n_train / n_val / n_test:
    scans (= subjects) per split; scans 0…n_train−1 are train, then val, then test (mri.data.subjects);
    ``n_scans`` is their sum and ``replace(n_scans=k)`` splits k by `default_split_counts`.
    coils: birdcage coils. echoes: 1 or 2 (the second darker, T2-weighted). accelerations:
    Poisson-disc masks stored per scan. snr_db: per-coil SNR in dB, one value or a (low, high) range
    drawn per scan (see simulate.add_noise). source: "mni", "phantom" or "mixed" (subjects.py).
    contrasts: cycled over scans (echo 0). oversample: anatomy and coils are simulated on a grid this
    many times finer and k-space is cropped (no inverse crime). calib: calibration box side (None: 24,
    smaller for small shapes, see masks.calibration_width). espirit_max_iter: ESPIRiT power iterations.
    seed: everything is drawn from (seed, scan index), so scans can be generated in any order and resumed.
    Model mismatch (mri.data.mismatch): b0_hz (peak off-resonance), gradient_delay (readout samples),
    readout_bw_hz (bandwidth per pixel), maps ("espirit": estimated, the default; "true": birdcage maps).
    """
    shape: tuple = (256, 256)
    slices: int = 16
    n_train: int = 5
    n_val: int = 1
    n_test: int = 2
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
    b0_hz: float = 0.0
    gradient_delay: float = 0.0
    readout_bw_hz: float = 250.0
    maps: str = "espirit"

    @property
    def n_scans(self) -> int:
        return self.n_train + self.n_val + self.n_test

    @property
    def has_mismatch(self) -> bool:
        return self.b0_hz > 0 or self.gradient_delay != 0

    def replace(self, **changes) -> "SimConfig":
        """A copy with the given fields changed; None values are ignored (unset CLI options).
        ``n_scans=k`` (without split counts) splits k scans by `default_split_counts`."""
        changes = {k: v for k, v in changes.items() if v is not None}
        n_scans = changes.pop("n_scans", None)
        if n_scans is not None and not {"n_train", "n_val", "n_test"} & set(changes):
            changes.update(zip(("n_train", "n_val", "n_test"), default_split_counts(int(n_scans))))
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    def validate(self) -> "SimConfig":
        """Raise ConfigError naming the option of the first setting that can never simulate; else self."""
        from mri.data.anatomy import CONTRASTS
        from mri.data.masks import calibration_width
        from mri.data.mismatch import check_mismatch
        from mri.data.subjects import KINDS

        def bad(field, found, expected):
            raise ConfigError(f"{OPTION[field]} is {found!r}; expected {expected}")

        if len(self.shape) != 2 or any(int(n) != n or n < 16 or n % 2 for n in self.shape):
            bad("shape", self.shape, "two even sizes ≥ 16, e.g. --shape 64 64")
        for field, low in [("slices", 1), ("n_train", 1), ("n_val", 0), ("n_test", 0), ("coils", 1),
                           ("oversample", 1), ("espirit_max_iter", 1)]:
            value = getattr(self, field)
            if int(value) != value or value < low:
                bad(field, value, f"an integer ≥ {low}")
        if self.echoes not in (1, 2):
            bad("echoes", self.echoes, "1 or 2")
        if self.source not in KINDS:
            bad("source", self.source, f"one of {KINDS}")
        if not self.contrasts or any(c not in CONTRASTS for c in self.contrasts):
            bad("contrasts", self.contrasts, f"a non-empty list of {tuple(CONTRASTS)}")
        if len(self.snr_db) not in (1, 2) or (len(self.snr_db) == 2 and self.snr_db[0] > self.snr_db[1]):
            bad("snr_db", self.snr_db, "one value or LOW HIGH with LOW ≤ HIGH")
        calib = self.calib or calibration_width(self.shape)
        if not MIN_CALIB <= calib <= min(self.shape):
            bad("calib", calib, f"a calibration width in [{MIN_CALIB}, {min(self.shape)}]")
        if not self.accelerations:
            bad("accelerations", self.accelerations, "at least one acceleration > 1")
        for acc in self.accelerations:
            if not acc > 1:
                bad("accelerations", acc, "accelerations > 1")
            if calib * calib * acc > self.shape[0] * self.shape[1]:
                bad("accelerations", acc, f"at most {self.shape[0] * self.shape[1] / calib ** 2:.1f}: the "
                                          f"{calib}×{calib} calibration box alone samples more of {tuple(self.shape)}")
        check_mismatch(self.b0_hz, self.gradient_delay, self.maps, self.readout_bw_hz, width=self.shape[1])
        return self


PRESETS = {
    # tests and the demo: a few seconds on a laptop CPU (one subject per split)
    "tiny": SimConfig(shape=(64, 64), slices=4, n_train=1, n_val=1, n_test=1, coils=4, accelerations=(2.0, 4.0),
                      espirit_max_iter=30),
    # the default: 8 scans of 16 brain slices at 256×256 with 8 coils
    "default": SimConfig(),
    # SKM-TEA's (ky, kz) matrix, two echoes and its accelerations
    "skmtea-like": SimConfig(shape=(512, 160), echoes=2, accelerations=(4.0, 6.0, 8.0, 10.0, 12.0, 16.0)),
    # the CPU benchmark protocol: 8 train, 2 val, 10 test subjects × 4 slices of 64², 6 coils (about 1 min
    # on one core); a quarter of each split are phantoms
    "protocol-cpu": SimConfig(shape=(64, 64), slices=4, n_train=8, n_val=2, n_test=10, coils=6,
                              accelerations=(4.0, 6.0, 8.0), source="mixed", espirit_max_iter=30),
    # the GPU benchmark protocol: 32 train, 4 val, 16 test subjects × 8 slices of 128², 8 coils
    "protocol-gpu": SimConfig(shape=(128, 128), slices=8, n_train=32, n_val=4, n_test=16, coils=8,
                              accelerations=(4.0, 6.0, 8.0), source="mixed", espirit_max_iter=50),
    # the CPU study (issue 21): the protocol-cpu grid with 16 train subjects × 8 slices, so that a small unrolled
    # network can be trained past tuned CG-SENSE (benchmarks/results/mri_sizing.md)
    "study-cpu": SimConfig(shape=(64, 64), slices=8, n_train=16, n_val=2, n_test=10, coils=6,
                           accelerations=(2.0, 4.0, 8.0), source="mixed", espirit_max_iter=30),
    # the same with 3× the training subjects (48 × 8 slices): the sizing's data-size point
    "study-cpu-48": SimConfig(shape=(64, 64), slices=8, n_train=48, n_val=2, n_test=10, coils=6,
                              accelerations=(2.0, 4.0, 8.0), source="mixed", espirit_max_iter=30),
}
# the model-mismatch track of each protocol: 60 Hz peak B0 (0.24 pixel shift at 250 Hz/pixel), a
# 0.3-sample gradient delay, ESPIRiT maps (the default)
MISMATCH = {"b0_hz": 60.0, "gradient_delay": 0.3, "maps": "espirit"}
PRESETS.update({f"{name}-mismatch": PRESETS[name].replace(**MISMATCH) for name in ("protocol-cpu", "protocol-gpu", "study-cpu", "study-cpu-48")})
