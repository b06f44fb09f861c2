"""What the SKM-TEA and fastMRI readers share: finding the files, selecting scans, opening HDF5
files lazily once per worker process, and the per-volume normalisation.

Every reader yields the same item (a dict), so reconstruction code does not care where data came from:

    kspace       (coils, H, W) complex64   k-space as stored (fully sampled unless the file is a
                                           fastMRI test file), divided by the volume's scale
    maps         (coils, H, W) complex64   coil sensitivities (RSS ≈ 1 inside the object)
    target       (H, W)        complex64   SENSE combination Σ conj(S)·F⁻¹(kspace), divided by the scale
    mask         (H, W)        float32     sampling mask (1 = sampled), only when an acceleration is asked
                                           for (or stored in the file); undersampled data = mask · kspace
    scale        float                     the divisor applied to kspace and target
    scan_id      str                       the volume the slice belongs to (file stem)
    slice_index  int                       position of the slice in its volume

Normalisation (``normalize=``): kspace and target are divided by one number per volume, computed on
the complex target volume of the chosen echo: ``"std"`` (default; the SKM-TEA loader's choice) uses
its standard deviation, ``"max"`` its largest magnitude, ``"none"`` divides by 1. The relation
target = Aᴴ kspace is linear, so it survives the division; maps are never scaled.
"""
import os
from pathlib import Path

import h5py
import numpy as np
import torch

NORMALIZATIONS = ("std", "max", "none")


def list_h5_files(path_or_dir, fmt: str) -> list[Path]:
    """A file, a folder (its ``*.h5`` files, sorted, without ``*.maps.h5`` caches) or a list of files."""
    if isinstance(path_or_dir, (list, tuple)):
        files = [Path(p) for p in path_or_dir]
    else:
        path = Path(path_or_dir)
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such file or folder (expected {fmt} .h5 files)")
        files = [path] if path.is_file() else sorted(
            p for p in path.glob("*.h5") if not p.name.endswith(".maps.h5") and not p.name.startswith("."))
        if not files:
            raise FileNotFoundError(
                f"{path}: folder holds no .h5 files; expected one {fmt} file per scan "
                f"(see datasets/README.md for where to get them or how to simulate them)")
    missing = [str(p) for p in files if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"not a file: {missing}")
    return files


def select_scans(files: list[Path], scans) -> list[Path]:
    """Keep the files whose stem or path is listed in ``scans`` (None keeps all), in sorted order."""
    if scans is None:
        return sorted(files, key=lambda p: p.stem)
    by_id = {p.stem: p for p in files}
    chosen = []
    for s in scans:
        key = Path(s).stem if str(s).endswith(".h5") else str(s)
        if key not in by_id:
            raise KeyError(f"scan {s!r} not found; available scans: {sorted(by_id)}")
        chosen.append(by_id[key])
    return sorted(set(chosen), key=lambda p: p.stem)


def check_normalize(normalize: str) -> str:
    if normalize not in NORMALIZATIONS:
        raise ValueError(f"normalize must be one of {NORMALIZATIONS}, got {normalize!r}")
    return normalize


def pick_scale(normalize: str, std: float, max_abs: float, where: str) -> float:
    scale = {"std": std, "max": max_abs, "none": 1.0}[normalize]
    if not np.isfinite(scale) or scale <= 0:
        raise ValueError(f"{where}: the target volume's {normalize} is {scale}; cannot normalise "
                         f"(all-zero or non-finite target) — use normalize='none' or check the file")
    return float(scale)


class RunningStats:
    """Standard deviation and largest magnitude of a complex volume read in slabs (bounded memory)."""

    def __init__(self):
        self.n, self.total, self.total_sq, self.max_abs = 0, 0j, 0.0, 0.0

    def add(self, x: np.ndarray):
        x = x.astype(np.complex128, copy=False)
        self.n += x.size
        self.total += x.sum()
        self.total_sq += float(np.sum(np.abs(x) ** 2))
        self.max_abs = max(self.max_abs, float(np.abs(x).max(initial=0.0)))

    @property
    def std(self) -> float:
        mean = self.total / max(self.n, 1)
        return float(np.sqrt(max(self.total_sq / max(self.n, 1) - abs(mean) ** 2, 0.0)))


class SliceDataset(torch.utils.data.Dataset):
    """Base of the readers: an index of (file, slice) pairs and per-process HDF5 handles.

    Files are opened on first use in each process (h5py handles must not cross a fork), so the
    dataset can be given to a torch DataLoader with ``num_workers > 0``.
    """

    def __init__(self, files: list[Path], normalize: str):
        self.files = files
        self.normalize = check_normalize(normalize)
        self._index: list[tuple[int, int]] = []
        self._handles: dict[int, h5py.File] = {}
        self._pid = os.getpid()

    @property
    def scan_ids(self) -> list[str]:
        """Scan ids (file stems) in stable sorted order — split train/val/test on these."""
        return [p.stem for p in self.files]

    def __len__(self) -> int:
        return len(self._index)

    def _open(self, file_index: int) -> h5py.File:
        if os.getpid() != self._pid:  # forked into a DataLoader worker: never reuse the parent's handles
            self._handles, self._pid = {}, os.getpid()
        handle = self._handles.get(file_index)
        if handle is None:
            handle = self._handles[file_index] = h5py.File(self.files[file_index], "r")
        return handle

    def close(self):
        for handle in self._handles.values():
            handle.close()
        self._handles = {}

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_handles"] = {}
        return state

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    def _item(self, kspace, maps, target, mask, scale, file_index, slice_index) -> dict:
        item = {
            "kspace": np.ascontiguousarray(kspace / scale, dtype=np.complex64),
            "maps": np.ascontiguousarray(maps, dtype=np.complex64),
            "target": np.ascontiguousarray(target / scale, dtype=np.complex64),
            "scale": float(scale),
            "scan_id": self.files[file_index].stem,
            "slice_index": int(slice_index),
        }
        if mask is not None:
            item["mask"] = np.ascontiguousarray(mask, dtype=np.float32)
        return item
