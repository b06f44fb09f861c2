"""Resumable, atomic generation: an interrupted and resumed run equals an uninterrupted one."""
import h5py
import numpy as np
import pytest

import pde.data.navier_stokes as ns_module
from common.errors import ConfigError
from pde.data.presets import configure, generate
from pde.data.readers import load_dataset

TINY = configure("ns-tiny", n=5, res=16, gen_res=16, batch_size=2, t_final=0.2, record_steps=2, dt=0.05)


class Interrupt(RuntimeError):
    pass


def _interrupting(monkeypatch, after_batches):
    real = ns_module.generate_batch
    calls = {"n": 0}

    def flaky(*args, **kwargs):
        if calls["n"] == after_batches:
            raise Interrupt("simulated crash")
        calls["n"] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(ns_module, "generate_batch", flaky)


def test_resume_after_interruption_gives_the_same_file(tmp_path, monkeypatch):
    reference = load_dataset(generate(TINY, tmp_path / "ref.h5", seed=3, progress=False))
    out = tmp_path / "resumed.h5"
    with monkeypatch.context() as patch:
        _interrupting(patch, after_batches=2)
        with pytest.raises(Interrupt):
            generate(TINY, out, seed=3, progress=False)
    partial = tmp_path / "resumed.h5.partial"
    assert not out.exists() and partial.exists()  # never a half file under the final name
    with h5py.File(partial) as f:
        assert f.attrs["completed"] == 4 and not f.attrs["complete"]
    with pytest.raises(ValueError, match="incomplete"):
        load_dataset(partial)
    # resume with a different batch size: per-sample seeding makes the data independent of batching
    resumed = load_dataset(generate(configure(TINY, batch_size=3), out, seed=3, progress=False))
    assert not partial.exists()
    for key in ("a", "u", "t"):
        np.testing.assert_array_equal(resumed[key], reference[key])
    assert resumed.meta["attrs"]["seed"] == 3 and resumed.meta["attrs"]["n_train"] + resumed.meta["attrs"]["n_test"] == 5


def test_resume_with_other_parameters_is_refused(tmp_path, monkeypatch):
    out = tmp_path / "x.h5"
    with monkeypatch.context() as patch:
        _interrupting(patch, after_batches=1)
        with pytest.raises(Interrupt):
            generate(TINY, out, seed=0, progress=False)
    with pytest.raises(ConfigError, match="different parameters.*seed"):
        generate(TINY, out, seed=1, progress=False)


def test_same_seed_same_file_and_existing_output_is_protected(tmp_path):
    tiny = configure(TINY, n=2)
    first = load_dataset(generate(tiny, tmp_path / "a.h5", seed=7, progress=False))
    second = load_dataset(generate(tiny, tmp_path / "b.h5", seed=7, progress=False))
    np.testing.assert_array_equal(first["u"], second["u"])
    with pytest.raises(FileExistsError, match="overwrite"):
        generate(tiny, tmp_path / "a.h5", seed=7, progress=False)
    params = first.meta["attrs"]["generator_params"]
    assert '"visc": 0.001' in params and '"seed": 7' in params and first.meta["attrs"]["code_version"]


def test_tiny_presets_generate_and_read(tmp_path):
    for name, keys in (("burgers-tiny", {"a": (3, 256), "u": (3, 256)}),
                       ("darcy-tiny", {"coeff": (3, 29, 29), "sol": (3, 29, 29)})):
        data = load_dataset(generate(configure(name, n=3), tmp_path / f"{name}.h5", progress=False))
        assert {k: v.shape for k, v in data.items()} == keys
        assert all(np.isfinite(v).all() for v in data.values())
