"""The study engine shared by `pde` and `mri` (in progress): so far the declarative spec
(`common.study.spec.StudySpec`) and equal-budget Optuna tuning that brackets its optimum
(`common.study.tuning.tune`) and the convergence rule (`common.study.convergence`); the runner, the application presets and the one
report writer follow (issue 19)."""
from .spec import Comparison, Knob, Method, Schedule, Stopping, StudySpec, Tuning

__all__ = ["StudySpec", "Method", "Knob", "Schedule", "Stopping", "Tuning", "Comparison"]
