"""The study engine shared by `pde` and `mri` (in progress): so far the declarative spec
(`common.study.spec.StudySpec`); tuning, bracketing, convergence, the runner and the report follow
(issue 19)."""
from .spec import Comparison, Knob, Method, Schedule, Stopping, StudySpec, Tuning

__all__ = ["StudySpec", "Method", "Knob", "Schedule", "Stopping", "Tuning", "Comparison"]
