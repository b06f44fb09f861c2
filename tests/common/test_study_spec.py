"""common.study.spec: a study spec round-trips through JSON and TOML and refuses specs that would break
the equal-budget rules (narrow shared ranges, tuning seed among the final seeds, unknown keys)."""
import json

import pytest

from common.errors import ConfigError
from common.study import StudySpec

SPEC = {"study": {
    "name": "toy", "application": "pde", "seeds": [0, 1, 2, 3, 4], "tune_seed": 99,
    "methods": [{"name": "fft", "knobs": ["lr", "weight_decay"], "role": "baseline"},
                {"name": "monarch", "knobs": ["lr", "weight_decay", "transform_lr"], "options": {"transform": "monarch"}},
                {"name": "fft-more-modes", "settings_from": "fft", "role": "control"}],
    "space": {"lr": {"low": 1e-4, "high": 1e-1}, "weight_decay": {"low": 1e-6, "high": 1e-2},
              "transform_lr": {"low": 1e-5, "high": 1e-1}},
    "schedule": {"kind": "step", "step_epochs": 50}, "tuning": {"trials": 20}}}

TOML = """
[study]
name = "toy"
application = "pde"
tune_seed = 99
[[study.methods]]
name = "fft"
knobs = ["lr"]
[study.space.lr]
low = 1e-4
high = 1e-2
"""


def test_round_trip_through_json_and_toml(tmp_path):
    spec = StudySpec.from_dict(SPEC)
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec.to_dict()))
    assert StudySpec.from_file(path) == spec
    assert [m.name for m in spec.tuned_methods()] == ["fft", "monarch"]
    assert [(c.method, c.baseline) for c in spec.comparison_list()] == [("monarch", "fft"), ("fft-more-modes", "fft")]
    (tmp_path / "spec.toml").write_text(TOML)
    toml = StudySpec.from_file(tmp_path / "spec.toml")
    assert toml.space["lr"].decades == pytest.approx(2) and toml.methods[0].knobs == ("lr",)


@pytest.mark.parametrize("change, message", [
    (lambda s: s["space"]["lr"].update(high=5e-3), "less than 2 decades"),
    (lambda s: s.update(tune_seed=3), "tuning seeds must differ|also a final seed"),
    (lambda s: s.update(colour="red"), "unknown study key"),
    (lambda s: s["methods"][1].update(knobs=["lr", "momentum"]), "no range"),
    (lambda s: s["methods"][2].update(settings_from="nothing"), "not a method"),
    (lambda s: s["schedule"].update(step_epochs=None), "step_epochs"),
])
def test_bad_specs_are_refused(change, message):
    values = json.loads(json.dumps(SPEC))["study"]
    change(values)
    with pytest.raises(ConfigError, match=message):
        StudySpec.from_dict(values)


def test_missing_or_unreadable_file(tmp_path):
    with pytest.raises(ConfigError, match="no such study spec"):
        StudySpec.from_file(tmp_path / "none.toml")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(ConfigError, match="not a readable study spec"):
        StudySpec.from_file(tmp_path / "bad.json")
