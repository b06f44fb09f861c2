"""The study engine shared by `pde` and `mri`: a declarative spec (`spec.StudySpec`), equal-budget
Optuna tuning that brackets its optimum (`tuning.tune`), the convergence rule (`convergence`), the runner
(`runner.run_study`: spec → plan → tuning → final runs over seeds → test evaluation, resumable), the
results document with two-level intervals (`results.collect`), the one report writer (`report`) and the
`run.py <application> study` sub-command (`cli.register_study`). An application supplies only a
`runner.StudyApplication` and its presets."""
from .spec import Choice, Comparison, Knob, Method, Schedule, Stopping, StudySpec, Tuning

__all__ = ["StudySpec", "Method", "Knob", "Choice", "Schedule", "Stopping", "Tuning", "Comparison"]
