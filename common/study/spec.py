"""A study, declared: what is compared, on what, with which budget and rules (`StudySpec`).

A spec is plain data (a dataclass tree that round-trips through JSON and TOML), so the plan a study
runs, the budget each method gets and the rules its answers obey are visible before anything runs and
are stored beside the results. The application (`pde`, `mri`) interprets only `problem`, each cell's
values and each method's `options`; everything else is the engine's (`common.study.engine`).

    [study]                       # TOML; the same keys in JSON
    name = "burgers"
    application = "pde"
    seeds = [0, 1, 2, 3, 4]       # final seeds (≥ 5 by default)
    tune_seed = 1000              # tuning seed, never a final seed
    metric = "rel_l2"             # the primary test metric, "lower" is better
    [study.problem]               # the application's: dataset, split, model sizes …
    dataset = "datasets/burgers.h5"
    [[study.methods]]
    name = "fft"
    knobs = ["lr", "weight_decay"]
    [study.space.lr]              # one range per knob, shared by every method that tunes it
    low = 1e-4
    high = 1e-2
    [study.space.wavelet]         # a categorical knob: its choices (no edges, so nothing to bracket)
    choices = ["haar", "db4", "sym4"]
"""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from common.errors import ConfigError

SCHEDULES = ("constant", "step", "cosine")
PRUNERS = ("hyperband", "successive-halving", "none")
DIRECTIONS = ("lower", "higher")


@dataclass
class Knob:
    """One tuned hyper-parameter: a log-uniform range (≥ 2 decades for the knobs methods share)."""
    low: float
    high: float
    log: bool = True

    def check(self, name: str) -> None:
        if not (self.low > 0 and self.high > self.low):
            raise ConfigError(f"search range of {name} is [{self.low}, {self.high}]; expected 0 < low < high")

    @property
    def decades(self) -> float:
        return math.log10(self.high / self.low)

    @property
    def middle(self) -> float:
        """The range's centre (geometric on a log scale): where a plan measures seconds per epoch."""
        return math.sqrt(self.low * self.high) if self.log else (self.low + self.high) / 2


@dataclass
class Choice:
    """One tuned categorical hyper-parameter (e.g. a wavelet family): Optuna's categorical distribution
    over `choices`. It has no edges, so neither bracketing nor widening applies to it (the report says
    "categorical")."""
    choices: tuple

    def check(self, name: str) -> None:
        values = list(self.choices)
        if len(values) < 2 or len(set(map(repr, values))) != len(values) or not all(
                isinstance(v, (str, int, float, bool)) for v in values):
            raise ConfigError(f"choices of {name} are {values}; expected at least 2 distinct strings or numbers")

    @property
    def middle(self):
        """The first choice (a categorical knob has no centre)."""
        return self.choices[0]


def knob_from(values, where: str) -> "Knob | Choice":
    """A space entry from its JSON/TOML table: {"choices": [...]} is a Choice, {"low", "high"} a Knob."""
    if isinstance(values, (Knob, Choice)):
        return values
    if isinstance(values, dict) and "choices" in values:
        choice = _build(Choice, values, where)
        return Choice(tuple(choice.choices) if isinstance(choice.choices, (list, tuple)) else (choice.choices,))
    return _build(Knob, values, where)


@dataclass
class Method:
    """One compared method. `knobs`: the space entries it tunes (its own budget covers them all);
    `options`: application values that make the method (e.g. {"transform": "monarch"});
    `settings_from`: a control that reuses another method's chosen point instead of tuning (it gets no
    budget: a control, not a competitor); `trained`: False for a method without training (a classical
    reconstruction: one evaluation, no seeds); `role`: "baseline" | "method" | "control"."""
    name: str
    knobs: tuple = ("lr", "weight_decay")
    options: dict = field(default_factory=dict)
    settings_from: str | None = None
    trained: bool = True
    role: str = "method"
    label: str | None = None


@dataclass
class Schedule:
    """The learning-rate schedule of every run: constant, step (×gamma every `step_epochs`, the FNO
    paper's) or cosine (to zero over the run's planned epochs)."""
    kind: str = "cosine"
    step_epochs: int | None = None
    gamma: float = 0.5

    def lr_factor(self, epochs_done: int, planned: int) -> float:
        """The learning rate after `epochs_done` epochs of a run planned over `planned`, as a fraction of
        the peak (the epoch-wise schedulers of common.training: CosineAnnealingLR(planned), StepLR)."""
        if self.kind == "cosine":
            return 0.5 * (1 + math.cos(math.pi * min(epochs_done, planned) / planned))
        if self.kind == "step":
            return self.gamma ** (epochs_done // self.step_epochs)
        return 1.0


@dataclass
class Stopping:
    """When a final run has converged: the best validation metric improved by less than `min_gain`
    (relative) over the last `window` fraction of the epochs, checked from `min_epochs` on and, under a
    decaying schedule, only once its learning rate has fallen to `min_lr_factor` of the peak; runs stop
    there, or at `max_epochs` (then "not converged"). The schedule is planned over `max_epochs`."""
    max_epochs: int = 100
    min_epochs: int = 20
    window: float = 0.25
    min_gain: float = 0.01
    # a plateau at a high learning rate is noise, not convergence: seen on mri-cpu, where runs the rule let
    # stop at epoch 20 of a 60-epoch cosine (lr still 0.75 of its peak) ended 12 % above the seeds that ran on
    min_lr_factor: float = 0.1


@dataclass
class Tuning:
    """Equal-budget tuning: `trials` per method (every method the same), each trial trained up to
    `epochs` with the pruner stopping poor ones early (multi-fidelity on the validation metric).
    Bracketing: a chosen value in the outer `edge` fraction (log scale) of its range widens that end
    by a decade and runs `extra_trials` more per method (the same for every method), at most
    `max_widenings` times."""
    trials: int = 20
    epochs: int = 20
    pruner: str = "successive-halving"  # resume-exact (Hyperband assigns brackets by trial number)
    min_epochs: int = 2
    reduction: int = 3
    edge: float = 0.1
    extra_trials: int = 8
    max_widenings: int = 2
    sampler_seed: int = 12345


@dataclass
class Comparison:
    """A reported comparison of `method` against `baseline` on `metric` (default: the study's primary
    metric): a ratio of mean errors or a difference of means (PSNR). `goal`: the value the project
    wants the estimate to beat (`goal_direction` "below" for ratios, "above" for differences)."""
    method: str
    baseline: str
    metric: str | None = None
    goal: float | None = None


@dataclass
class StudySpec:
    """Everything a study depends on (saved as OUT/spec.json; see the module docstring)."""
    name: str
    application: str
    problem: dict = field(default_factory=dict)
    cells: list = field(default_factory=lambda: [{}])  # e.g. [{"track": "exact", "acceleration": 4.0}, …]
    methods: list = field(default_factory=list)
    space: dict = field(default_factory=dict)
    tuning: Tuning = field(default_factory=Tuning)
    schedule: Schedule = field(default_factory=Schedule)
    stopping: Stopping = field(default_factory=Stopping)
    seeds: tuple = (0, 1, 2, 3, 4)
    tune_seed: int = 1000
    metric: str = "rel_l2"                 # primary test metric (per test sample)
    direction: str = "lower"               # of the primary metric (validation is always "lower")
    statistic: str = "ratio"               # "ratio" (errors) or "difference" (PSNR) for comparisons
    comparisons: list = field(default_factory=list)
    published: dict = field(default_factory=dict)  # {method: {"value", "source"}} published test value
    device: str = "auto"
    jobs: int = 1
    threads: int = 1
    notes: str = ""

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_dict(cls, values: dict) -> "StudySpec":
        values = dict(values.get("study", values))
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"unknown study key(s) {unknown}; known: {sorted(known)}")
        nested = {"tuning": Tuning, "schedule": Schedule, "stopping": Stopping}
        for key, kind in nested.items():
            if isinstance(values.get(key), dict):
                values[key] = _build(kind, values[key], key)
        values["methods"] = [m if isinstance(m, Method) else _build(Method, m, "methods") for m in values.get("methods", [])]
        values["space"] = {k: knob_from(v, f"space.{k}") for k, v in values.get("space", {}).items()}
        values["comparisons"] = [c if isinstance(c, Comparison) else _build(Comparison, c, "comparisons")
                                 for c in values.get("comparisons", [])]
        for key in ("seeds",):
            if key in values:
                values[key] = tuple(values[key])
        for method in values["methods"]:
            method.knobs = tuple(method.knobs)
        return cls(**values).check()

    @classmethod
    def from_file(cls, path) -> "StudySpec":
        """A spec from a .toml or .json file (ConfigError naming the file when it cannot be read)."""
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"{path}: no such study spec file", hint="give a preset name or a .toml/.json spec")
        try:
            if path.suffix == ".toml":
                import tomllib

                values = tomllib.loads(path.read_text())
            else:
                values = json.loads(path.read_text())
        except (ValueError, UnicodeDecodeError) as error:
            raise ConfigError(f"{path}: not a readable study spec ({error})",
                              hint="a TOML file with a [study] table, or a JSON object") from None
        return cls.from_dict(values)

    def to_dict(self) -> dict:
        return json.loads(json.dumps(dataclasses.asdict(self)))

    def replace(self, **changes) -> "StudySpec":
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None}).check()

    # ------------------------------------------------------------------ queries
    def method(self, name: str) -> Method:
        for method in self.methods:
            if method.name == name:
                return method
        raise ConfigError(f"study {self.name} has no method {name!r}; it has {[m.name for m in self.methods]}")

    def tuned_methods(self) -> list[Method]:
        return [m for m in self.methods if m.settings_from is None and m.knobs]

    def cell_label(self, cell: dict) -> str:
        """"exact-acc4" for {"track": "exact", "acceleration": 4.0}; "main" for the single empty cell."""
        if not cell:
            return "main"
        def text(value):
            if isinstance(value, float):
                return f"{value:g}"
            if isinstance(value, str) and ("/" in value or "." in value):
                return Path(value).stem  # a file: its name ("datasets/ns-tiny.h5" → "ns-tiny")
            return str(value)
        return "-".join(text(v) for k, v in cell.items() if k != "tune_with")

    def tuning_cell(self, cell: dict) -> dict:
        """The cell whose tuning `cell` uses (its own, or the one its "tune_with" label names)."""
        label = cell.get("tune_with")
        if label is None:
            return cell
        for other in self.cells:
            if self.cell_label(other) == label:
                return other
        raise ConfigError(f"cell {self.cell_label(cell)} tunes with {label!r}, which is not a cell of the study")

    def comparison_list(self) -> list[Comparison]:
        """The declared comparisons, or every non-baseline method against the first baseline."""
        if self.comparisons:
            return list(self.comparisons)
        baselines = [m.name for m in self.methods if m.role == "baseline"] or [self.methods[0].name]
        return [Comparison(m.name, baselines[0]) for m in self.methods if m.name != baselines[0]]

    # ------------------------------------------------------------------ validation
    def check(self) -> "StudySpec":
        """ConfigError for a spec that cannot run or would break the equal-budget rules."""
        if not self.methods:
            raise ConfigError(f"study {self.name} has no methods")
        names = [m.name for m in self.methods]
        if len(set(names)) != len(names):
            raise ConfigError(f"study {self.name}: method names repeat ({names})")
        for method in self.methods:
            missing = [k for k in method.knobs if k not in self.space]
            if missing:
                raise ConfigError(f"method {method.name} tunes {missing}, which have no range in the study's space")
            if method.settings_from is not None and method.settings_from not in names:
                raise ConfigError(f"method {method.name} takes its settings from {method.settings_from!r}, "
                                  "which is not a method of the study")
        for name, knob in self.space.items():
            knob.check(name)
        shared = [k for k in self.space if sum(k in m.knobs for m in self.tuned_methods()) > 1]
        narrow = [k for k in shared if isinstance(self.space[k], Knob) and self.space[k].decades < 2 - 1e-9]
        if narrow:
            raise ConfigError(f"shared knob(s) {narrow} span less than 2 decades",
                              hint="every method gets the same log-uniform range of at least 2 decades")
        if self.schedule.kind not in SCHEDULES:
            raise ConfigError(f"schedule {self.schedule.kind!r}; expected one of {SCHEDULES}")
        if self.schedule.kind == "step" and not (self.schedule.step_epochs or 0) >= 1:
            raise ConfigError("a step schedule needs step_epochs ≥ 1")
        if self.tuning.pruner not in PRUNERS:
            raise ConfigError(f"pruner {self.tuning.pruner!r}; expected one of {PRUNERS}")
        if self.tuning.trials < 1 or self.tuning.epochs < 1 or self.stopping.max_epochs < 1:
            raise ConfigError("tuning trials, tuning epochs and stopping.max_epochs must be ≥ 1")
        if not 0 < self.stopping.window < 1 or self.stopping.min_gain < 0:
            raise ConfigError("stopping.window must be in (0, 1) and stopping.min_gain ≥ 0")
        if not self.seeds:
            raise ConfigError("a study needs at least one final seed")
        if self.jobs < 1 or self.threads < 1:
            raise ConfigError(f"jobs = {self.jobs}, threads = {self.threads}; expected integers ≥ 1",
                              hint="pass --jobs / --threads ≥ 1")
        if self.tune_seed in self.seeds:
            raise ConfigError(f"tune_seed {self.tune_seed} is also a final seed",
                              hint="tuning seeds must differ from final seeds")
        if self.direction not in DIRECTIONS or self.statistic not in ("ratio", "difference"):
            raise ConfigError(f"direction {self.direction!r} / statistic {self.statistic!r}; expected "
                              f"{DIRECTIONS} / ratio or difference")
        for comparison in self.comparisons:
            for name in (comparison.method, comparison.baseline):
                if name not in names:
                    raise ConfigError(f"comparison {comparison.method} vs {comparison.baseline}: {name!r} is not a method")
        labels = [self.cell_label(c) for c in self.cells]
        if len(set(labels)) != len(labels):
            raise ConfigError(f"study cells repeat: {labels}")
        for cell in self.cells:
            self.tuning_cell(cell)
        return self


def _build(kind, values: dict, where: str):
    known = {f.name for f in dataclasses.fields(kind)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"unknown key(s) {unknown} in the study's {where}; known: {sorted(known)}")
    return kind(**values)


__all__ = ["StudySpec", "Method", "Knob", "Choice", "knob_from", "Schedule", "Stopping", "Tuning", "Comparison"]
