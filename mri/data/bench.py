"""`python run.py bench mri-data`: slices per second of the simulation and of the readers on CPU,
and the size and generation time of the default preset (extrapolated from a few slices at its size).

Writes ``mri_data_cpu.json``, ``.md`` and ``.png`` under ``--out``.
"""
import os
import platform
import tempfile
import time
from pathlib import Path

import h5py

from common.bench_results import refuse_overwrite, write_results
from common.files import save_figure
from common.machine_load import LoadGuard, load_sentence


def _pass(dataset) -> float:
    """Seconds to read every item once."""
    start = time.perf_counter()
    for i in range(len(dataset)):
        dataset[i]
    return time.perf_counter() - start


def _slice_bytes(config) -> int:
    """Bytes per slice of a simulated file: kspace + maps + target + truth, complex64."""
    h, w = config.shape
    return 8 * h * w * (config.echoes * config.coils + config.coils + 2 * config.echoes)


def _write_fastmri_copy(skmtea_file: Path, out: Path):
    """The first echo of a simulated scan in the fastMRI layout (kspace only: maps get estimated)."""
    with h5py.File(skmtea_file, "r") as f:
        ksp = f["kspace"][:, :, :, 0, :].transpose(0, 3, 1, 2)
    with h5py.File(out, "w") as f:
        f.create_dataset("kspace", data=ksp)


def run(default_slices: int = 4) -> dict:
    from mri.data.fastmri import FastMRISlices
    from mri.data.presets import PRESETS
    from mri.data.simulate import simulate_dataset
    from mri.data.skmtea import SkmTeaSlices

    results = {"device": "cpu", "cpu_count": os.cpu_count(), "machine": platform.processor() or platform.machine(),
               "rows": []}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        # warm imports and numba's Poisson kernel so the timings below are of the work itself
        simulate_dataset(PRESETS["tiny"].replace(n_scans=1, slices=1), tmp / "warm", progress=False)
        for name, config in [("tiny", PRESETS["tiny"]),
                             ("default (sample)", PRESETS["default"].replace(n_scans=1, slices=default_slices))]:
            start = time.perf_counter()
            paths = simulate_dataset(config, tmp / name.split()[0], progress=False)
            seconds = time.perf_counter() - start
            n = config.n_scans * config.slices
            results["rows"].append({"what": f"simulate {name}", "shape": list(config.shape), "coils": config.coils,
                                    "slices": n, "seconds": seconds, "slices_per_s": n / seconds,
                                    "bytes": sum(p.stat().st_size for p in paths)})
            ds = SkmTeaSlices(paths[0].parent, acceleration=4.0)
            cold, warm = _pass(ds), _pass(ds)
            for label, seconds in [("first pass, incl. scale", cold), ("next passes", warm)]:
                results["rows"].append({"what": f"SkmTeaSlices {name} ({label})", "shape": list(config.shape),
                                        "coils": config.coils, "slices": len(ds), "seconds": seconds,
                                        "slices_per_s": len(ds) / seconds})
            fm_dir = tmp / f"fastmri-{name.split()[0]}"
            fm_dir.mkdir()
            for p in paths:
                _write_fastmri_copy(p, fm_dir / p.name)
            with h5py.File(paths[0], "r") as f:
                calib = int(f.attrs["calib_width"])
            ds = FastMRISlices(fm_dir, acceleration=4.0, calib_width=calib)
            first = _pass(ds)
            again = _pass(FastMRISlices(fm_dir, acceleration=4.0, calib_width=calib))
            for label, seconds in [("first pass, ESPIRiT + cache write", first), ("cached maps", again)]:
                results["rows"].append({"what": f"FastMRISlices {name} ({label})", "shape": list(config.shape),
                                        "coils": config.coils, "slices": len(ds), "seconds": seconds,
                                        "slices_per_s": len(ds) / seconds})
        default = PRESETS["default"]
        sample = next(r for r in results["rows"] if r["what"] == "simulate default (sample)")
        n_default = default.n_scans * default.slices
        results["default_preset"] = {
            "scans": default.n_scans, "slices": n_default, "shape": list(default.shape), "coils": default.coils,
            "estimated_seconds": n_default / sample["slices_per_s"],
            "estimated_bytes": n_default * _slice_bytes(default),
            "measured_bytes_per_slice": sample["bytes"] / sample["slices"]}
    return results


def _markdown(results: dict, label: str = "") -> str:
    lines = [f"# MRI data throughput ({results['device']}, {results['cpu_count']} cores, {results['machine']}){label}",
             "", f"{load_sentence(results.get('load'))}.", "",
             "| what | slice shape | coils | slices | seconds | slices/s |", "|---|---|---|---|---|---|"]
    for r in results["rows"]:
        lines.append(f"| {r['what']} | {r['shape'][0]}×{r['shape'][1]} | {r['coils']} | {r['slices']} | "
                     f"{r['seconds']:.2f} | {r['slices_per_s']:.1f} |")
    d = results["default_preset"]
    lines += ["", f"Default preset ({d['scans']} scans × {d['slices'] // d['scans']} slices, "
                  f"{d['shape'][0]}×{d['shape'][1]}, {d['coils']} coils): about "
                  f"{d['estimated_seconds'] / 60:.1f} min and {d['estimated_bytes'] / 2**30:.2f} GiB "
                  f"({d['measured_bytes_per_slice'] / 2**20:.1f} MiB per slice measured), extrapolated from the sample."]
    return "\n".join(lines) + "\n"


def _plot(results: dict, path: Path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = results["rows"]
    fig, ax = plt.subplots(figsize=(8, 0.4 * len(rows) + 1))
    ax.barh([r["what"] for r in rows][::-1], [r["slices_per_s"] for r in rows][::-1])
    ax.set_xscale("log")
    ax.set_xlabel("slices per second (log)")
    ax.set_title(f"MRI data on {results['device']} ({results['cpu_count']} cores)")
    fig.tight_layout()
    save_figure(fig, path, dpi=100)


def main(args) -> int:
    import torch

    refuse_overwrite(args.out, "mri_data_cpu", args.overwrite)
    guard = LoadGuard(torch.device("cpu"), args.allow_loaded, "bench mri-data")
    results = run(default_slices=args.default_slices)
    results["load"] = guard.finish()
    markdown = _markdown(results, guard.label())
    paths = write_results(args.out, f"mri_data_{results['device']}", results, markdown)
    _plot(results, paths[0].with_suffix(".png"))
    print(markdown)
    return 0
