"""Named dataset presets (`python run.py data <preset>`) and the function that generates one into HDF5.

Paper presets follow the FNO paper's data (sizes, resolutions, parameters); tiny presets make small
files in seconds on a laptop CPU for tests and demos. The default time steps are measured choices:
see ``benchmarks/results/pde_data_dt_study.md`` (Navier–Stokes); for Burgers, ETDRK4 with Δt = 1e-3
and 5e-3 differed from Δt = 1e-4 by 4e-9 and 3e-7 relative L2 (4 GRF samples, 1024 and 8192 points),
so 2e-3 is far below float32 storage precision.
"""
import importlib
import math
from dataclasses import dataclass, field, replace
from pathlib import Path

from common.errors import ConfigError

EQUATION_MODULES = {
    "navier_stokes_2d": "pde.data.navier_stokes",
    "burgers_1d": "pde.data.burgers",
    "darcy_2d": "pde.data.darcy",
}

NS_GRF = {"alpha": 2.5, "tau": 7.0}
BURGERS = {"visc": 0.1, "t_final": 1.0, "dt": 2e-3, "alpha": 2.0, "tau": 5.0, "sigma": 25.0}
DARCY = {"alpha": 2.0, "tau": 3.0, "coeff_high": 12.0, "coeff_low": 3.0, "forcing": 1.0}


@dataclass(frozen=True)
class Preset:
    """A dataset recipe.

    n: samples (n_train + n_test, the paper's split, stored as file attributes).
    gen_res / res: generation and stored resolution (points per side).
    batch_size: samples per solver call and per chunk written (memory / speed only; data unchanged).
    params: equation parameters (NS: visc, t_final, dt, record_steps, alpha, tau).
    """
    name: str
    equation: str
    description: str
    n_train: int
    n_test: int
    gen_res: int
    res: int
    batch_size: int
    params: dict = field(default_factory=dict)

    @property
    def n(self) -> int:
        return self.n_train + self.n_test


def _ns(name, visc, t_final, dt, description, n_train=1000, n_test=200, gen_res=256, res=64,
        record_steps=None, batch_size=100):
    params = {"visc": visc, "t_final": t_final, "dt": dt, "record_steps": record_steps or int(t_final), **NS_GRF}
    return Preset(name, "navier_stokes_2d", description, n_train, n_test, gen_res, res, batch_size, params)


PRESETS = {p.name: p for p in [
    _ns("ns-v1e-3", 1e-3, 50.0, 1e-3, "Navier–Stokes ν=1e-3, T=50 (FNO paper), 256² → 64²"),
    _ns("ns-v1e-4", 1e-4, 30.0, 1e-3, "Navier–Stokes ν=1e-4, T=30 (FNO paper), 256² → 64²"),
    _ns("ns-v1e-5", 1e-5, 20.0, 2.5e-4, "Navier–Stokes ν=1e-5, T=20 (FNO paper), 256² → 64²"),
    # Burgers, FNO paper §5.1: 1000 train + 100 validation (held out of the 1100-sample training part with
    # `pde train --n-val 100`) + 200 test. Both files draw the same trajectories (same seed, same 8192-point
    # solve): "burgers-1024" is the training resolution (every 8th point), "burgers" keeps all 8192 points
    # for the zero-shot super-resolution test (2048/4096 by taking every 4th/2nd point of it).
    Preset("burgers", "burgers_1d", "Burgers ν=0.1, u0 → u(·,1) (FNO paper), 8192 points (super-resolution)",
           1100, 200, 8192, 8192, 100, dict(BURGERS)),
    Preset("burgers-1024", "burgers_1d", "Burgers ν=0.1 (FNO paper), solved at 8192, stored at s=1024 (training)",
           1100, 200, 8192, 1024, 100, dict(BURGERS)),
    Preset("darcy", "darcy_2d", "Darcy, thresholded GRF coefficient 12/3, f=1 (FNO paper), 421²",
           1000, 100, 421, 421, 10, dict(DARCY)),
    # The FNO paper's Darcy training resolution: every 5th node of the 421² solve. 1100 + 100 so that
    # `pde train --n-val 100` leaves the paper's 1000 training samples and its 100 test samples.
    Preset("darcy-85", "darcy_2d", "Darcy 12/3 (FNO paper), solved at 421², stored at s=85 (training)",
           1100, 100, 421, 85, 10, dict(DARCY)),
    # Tiny presets: seconds on a 2-core CPU. ns-tiny records 15 frames, every 0.5 time units (T = 7.5),
    # so the FNO protocol (10 frames in, the rest predicted) has 5 frames to predict.
    _ns("ns-tiny", 1e-3, 7.5, 5e-3, "Navier–Stokes ν=1e-3, 15 frames to T=7.5, 64² (tests, demo)",
        n_train=32, n_test=8, gen_res=64, res=64, record_steps=15, batch_size=40),
    Preset("burgers-tiny", "burgers_1d", "Burgers ν=0.1 at 256 points (tests, demo)",
           32, 8, 256, 256, 40, dict(BURGERS)),
    Preset("darcy-tiny", "darcy_2d", "Darcy 12/3 at 29² (tests, demo)", 32, 8, 29, 29, 40, dict(DARCY)),
]}


def get_preset(name: str) -> Preset:
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return PRESETS[name]


# Command-line spelling of the settings a user can pass; equation parameters without an option are
# named as the keyword of `configure`.
OPTION_NAMES = {"n": "--n", "res": "--res", "gen_res": "--gen-res", "dt": "--dt", "batch_size": "--batch-size",
                "seed": "--seed"}


def _option(name: str) -> str:
    return OPTION_NAMES.get(name, name)


def _positive_int(name: str, value, minimum: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{_option(name)} must be an integer >= {minimum}, got {value!r}")


def _positive_float(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{_option(name)} must be a finite number > 0, got {value!r}")


def _check_grids(equation: str, gen_res: int, res: int) -> None:
    """The grid rules of each solver: NS and Burgers need an even generation grid that the stored
    grid divides (every (gen_res/res)-th point is kept); Darcy keeps nodes, so res−1 divides gen_res−1."""
    if equation == "darcy_2d":
        _positive_int("gen_res", gen_res, 3)
        _positive_int("res", res, 3)
        if (gen_res - 1) % (res - 1):
            valid = [d + 1 for d in range(2, gen_res) if (gen_res - 1) % d == 0]
            raise ConfigError(f"--res {res} does not fit the Darcy node grid --gen-res {gen_res}: res−1 must divide "
                              f"gen_res−1 = {gen_res - 1}; valid --res values: {valid}")
        return
    _positive_int("gen_res", gen_res, 2)
    _positive_int("res", res, 2)
    if gen_res % 2:
        raise ConfigError(f"--gen-res must be even for the spectral solver, got {gen_res}")
    if gen_res % res:
        valid = [d for d in range(2, gen_res + 1) if gen_res % d == 0]
        raise ConfigError(f"--res {res} must divide the generation grid --gen-res {gen_res} (every "
                          f"(gen_res/res)-th point is stored); valid --res values: {valid}",
                          hint="or pass --gen-res as a multiple of --res")


def check_settings(equation: str, *, n_samples, gen_res, res, params: dict, seed=0, batch_size=1) -> None:
    """Raise ConfigError, naming the option and its valid range, unless these settings can generate data.

    Called before any file is created; also used to recognise a stale ``.partial`` whose recorded
    parameters could never have produced a sample.
    """
    if equation not in EQUATION_MODULES:
        raise ConfigError(f"unknown equation {equation!r}; expected one of {sorted(EQUATION_MODULES)}")
    _positive_int("n", n_samples)
    _positive_int("batch_size", batch_size)
    _positive_int("seed", seed, 0)
    _check_grids(equation, gen_res, res)
    for name in ("dt", "t_final", "visc", "tau", "alpha", "coeff_high", "coeff_low"):
        if name in params:
            _positive_float(name, params[name])
    if "record_steps" in params:
        _positive_int("record_steps", params["record_steps"])
    if "sigma" in params and params["sigma"] is not None:
        _positive_float("sigma", params["sigma"])


def validate(preset: Preset, seed: int = 0) -> Preset:
    """`preset` itself when it can generate data (see `check_settings`), else ConfigError."""
    _positive_int("n_train", preset.n_train)
    _positive_int("n_test", preset.n_test, 0)
    check_settings(preset.equation, n_samples=preset.n, gen_res=preset.gen_res, res=preset.res,
                   params=preset.params, seed=seed, batch_size=preset.batch_size)
    return preset


def configure(preset: Preset | str, *, n: int | None = None, res: int | None = None,
              gen_res: int | None = None, dt: float | None = None, batch_size: int | None = None,
              **params) -> Preset:
    """A preset with overrides. With `n`, the train/test split keeps the preset's test share
    (n_test = round(n · n_test / n)); with `res` only, the generation resolution stays unless `res`
    exceeds it. Further keywords replace equation parameters (e.g. ``t_final=1.0, record_steps=2``)."""
    preset = get_preset(preset) if isinstance(preset, str) else preset
    changes = {}
    if n is not None:
        _positive_int("n", n)
        n_test = min(n - 1, round(n * preset.n_test / preset.n)) if n > 1 else 0
        changes.update(n_train=n - n_test, n_test=n_test)
    if res is not None:
        _positive_int("res", res, 2)
        changes["res"] = res
        if gen_res is None and res > preset.gen_res:
            gen_res = res
    if gen_res is not None:
        changes["gen_res"] = gen_res
    if batch_size is not None:
        changes["batch_size"] = batch_size
    if dt is not None:
        params["dt"] = dt
    unknown = set(params) - set(preset.params)
    if unknown:
        raise ConfigError(f"preset {preset.name} has no parameters {sorted(unknown)}; it has {sorted(preset.params)}")
    if params:
        changes["params"] = {**preset.params, **params}
    return validate(replace(preset, **changes))


def generate(preset: Preset | str, out=None, *, seed: int = 0, device="cpu", overwrite: bool = False,
             progress: bool = True) -> Path:
    """Generate a preset into `out` (default ``datasets/<preset>.h5``) resumably and atomically.

    Returns the finished file's path. File layout: see datasets/README.md ("This project's HDF5").
    """
    preset = validate(get_preset(preset) if isinstance(preset, str) else preset, seed)
    from pde.data.writer import write_resumable

    module = importlib.import_module(EQUATION_MODULES[preset.equation])
    params = {**preset.params, "gen_res": preset.gen_res, "res": preset.res}
    check_time_step(preset, seed)
    identity = {"equation": preset.equation, "seed": int(seed), "n_samples": preset.n, **params,
                "package_version": _package_version()}
    out = Path(out) if out is not None else Path("datasets") / f"{preset.name}.h5"
    attrs = {"equation": preset.equation, "preset": preset.name, "seed": int(seed), "n_train": preset.n_train,
             "n_test": preset.n_test, "device": str(device)}
    return write_resumable(
        out, params=identity, sample_shapes=module.sample_shapes(params), n_samples=preset.n,
        batch_size=preset.batch_size, attrs=attrs, overwrite=overwrite, progress=progress, desc=preset.name,
        stale_reason=_stale_reason,
        make_batch=lambda start, count: module.generate_batch(params, seed, start, count, device=device))


def check_time_step(preset: Preset, seed: int = 0) -> None:
    """ConfigError, before any file exists, when the preset's solver step breaks its equation's stability
    bound (``max_stable_dt`` of the equation module: the advective CFL condition, computed from this
    seed's initial conditions); equations without a time step (Darcy) pass."""
    module = importlib.import_module(EQUATION_MODULES[preset.equation])
    if not hasattr(module, "max_stable_dt"):
        return
    params = {**preset.params, "gen_res": preset.gen_res, "res": preset.res}
    bound, reason = module.max_stable_dt(params, seed, preset.n)
    step = module.effective_dt(params)
    if step > bound:
        taken = "" if math.isclose(step, params["dt"]) else f" (the step taken after fitting it to the record times: {step:.3g})"
        raise ConfigError(f"--dt {params['dt']:g}{taken} is above the stable bound {bound:.3g} of the {preset.name} "
                          f"solver: {reason}", hint=f"pass --dt {_round_down(bound)} or less (the preset's default is "
                                                    f"{PRESETS[preset.name].params['dt']:g})")


def _round_down(value: float) -> str:
    """`value` rounded down to 2 significant digits, as a command-line number."""
    exponent = math.floor(math.log10(value)) - 1
    return f"{math.floor(value / 10 ** exponent) * 10 ** exponent:.2g}"


def _stale_reason(recorded: dict) -> str | None:
    """Why a ``.partial`` started with `recorded` generator parameters could never have finished (None if
    it could): such a file holds no usable samples and is replaced rather than blocking the user."""
    try:
        check_settings(recorded.get("equation"), n_samples=recorded.get("n_samples"), gen_res=recorded.get("gen_res"),
                       res=recorded.get("res"), seed=recorded.get("seed"),
                       params={k: v for k, v in recorded.items()
                               if k not in ("equation", "n_samples", "gen_res", "res", "seed", "package_version")})
    except ConfigError as error:
        return str(error)
    return None


def _package_version() -> str:
    try:
        from importlib.metadata import version

        return version("monarch-sciml")
    except Exception:
        return "unknown"
