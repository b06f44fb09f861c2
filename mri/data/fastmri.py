"""Reader of fastMRI multi-coil files, with ESPIRiT coil maps estimated once and cached.

fastMRI layout (one HDF5 file per volume, see datasets/README.md):

    kspace               (slice, coil, H, W) complex64   H = readout (e.g. 640), W = phase encodes
    reconstruction_rss   (slice, 320, 320) float32       not on test files
    ismrmrd_header       XML string (encoded / recon matrix sizes)
    attrs: max (volume max of reconstruction_rss), acquisition, and on test files acceleration,
           num_low_frequency and a 1-D column ``mask`` (W,) — their kspace is already undersampled.

No coil maps are shipped: they are estimated per slice with ESPIRiT from the central calibration
region and written next to the data as ``<file>.maps.h5`` (atomically), with the per-volume
statistics of the SENSE target used for normalisation; later passes only read that cache.
"""
import xml.etree.ElementTree as ET
from pathlib import Path

import h5py
import numpy as np

from mri.data.coil_maps import estimate_maps
from common.errors import ConfigError
from common.files import atomic_h5
from mri.data.h5files import MalformedFileError, check_finite, open_h5, reading, require_dataset
from mri.data.masks import column_mask, scan_seed
from mri.data.slices import RunningStats, SliceDataset, list_h5_files, pick_scale, select_scans
from mri.data.transforms import sense_adjoint

FORMAT = "fastMRI multi-coil"
CACHE_VERSION = 1


def read_header(f: h5py.File) -> dict:
    """Encoded and recon matrix sizes (x, y, z) from ``ismrmrd_header``; {} when the file has none."""
    if "ismrmrd_header" not in f:
        return {}
    raw = f["ismrmrd_header"][()]
    try:
        root = ET.fromstring(raw.decode() if isinstance(raw, bytes) else str(raw))
    except ET.ParseError as err:
        raise MalformedFileError(f"{f.filename}: 'ismrmrd_header' is not valid XML ({err})") from err
    ns = {"m": "http://www.ismrm.org/ISMRMRD"}
    info = {}
    for space in ("encodedSpace", "reconSpace"):
        size = root.find(f"m:encoding/m:{space}/m:matrixSize", ns)
        if size is not None:
            info[space] = tuple(int(size.find(f"m:{a}", ns).text) for a in "xyz")
    return info


class FastMRISlices(SliceDataset):
    """2-D slices of fastMRI multi-coil volumes, read lazily, with cached ESPIRiT maps.

    Args:
        path_or_dir: one .h5 file, a folder of them or a list of files.
        acceleration: e.g. 4 to add a fastMRI 1-D column ``mask`` (H, W); None for none. Files that
            store their own ``mask`` (test files) always use it.
        center_fraction: fraction of fully-sampled central columns (fastMRI: 0.08 at 4×, 0.04 at 8×).
        mask_kind: "random" (RandomMaskFunc) or "equispaced" (EquispacedMaskFractionFunc).
        fixed_masks: True (default) draws one mask per volume seeded by its scan id (validation);
            False draws a new mask for every item (training).
        scans: scan ids (file stems) or paths to keep; None keeps all.
        normalize: "std" (default), "max" or "none" of the volume's complex SENSE target.
        maps_dir: folder for the ``<file>.maps.h5`` caches (default: next to each file).
        calib_width, kernel_width, thresh, crop, max_iter: ESPIRiT settings (sigpy's defaults);
            the calibration width is capped by a test file's ``num_low_frequency``.
        progress: show a tqdm bar while maps are estimated.

    Items: see :mod:`mri.data.slices`; target = Σ conj(S)·F⁻¹(kspace) with the estimated maps
    (zero-filled on undersampled test files, which hold no ground truth). Volumes differ in W
    (e.g. 368 or 372): select scans of one shape (``slice_shape``) or use batch size 1.
    """

    def __init__(self, path_or_dir, acceleration: float | None = None, center_fraction: float = 0.08,
                 mask_kind: str = "random", fixed_masks: bool = True, scans=None, normalize: str = "std",
                 maps_dir=None, calib_width: int = 24, kernel_width: int = 6, thresh: float = 0.02,
                 crop: float = 0.95, max_iter: int = 100, progress: bool = False):
        super().__init__(select_scans(list_h5_files(path_or_dir, FORMAT), scans), normalize)
        if mask_kind not in ("random", "equispaced"):
            raise ConfigError(f"mask_kind must be 'random' or 'equispaced', got {mask_kind!r}")
        self.acceleration = None if acceleration is None else float(acceleration)
        self.center_fraction, self.mask_kind, self.fixed_masks = center_fraction, mask_kind, fixed_masks
        self.maps_dir = None if maps_dir is None else Path(maps_dir)
        self.espirit = dict(calib_width=calib_width, kernel_width=kernel_width, thresh=thresh, crop=crop,
                            max_iter=max_iter)
        self.progress = progress
        self.maps_estimated = 0  # volumes whose maps this instance computed (0 when the cache was used)
        self._shapes, self._stats, self._headers = {}, {}, {}
        for i, path in enumerate(self.files):
            with open_h5(path, FORMAT) as f, reading(path, FORMAT):
                ksp = require_dataset(f, "kspace", 4, "complex", "(slice, coil, H, W)", FORMAT)
                if "mask" in f:
                    m = require_dataset(f, "mask", 1, "bool-or-real", "(W,)", FORMAT)
                    if m.shape[0] != ksp.shape[-1]:
                        raise MalformedFileError(f"{path}: 'mask' has {m.shape[0]} columns, kspace has "
                                                 f"W = {ksp.shape[-1]}; expected a (W,) column mask")
                self._headers[path.stem] = {**read_header(f), **{k: _plain(v) for k, v in f.attrs.items()}}
                self._shapes[path.stem] = ksp.shape[-2:]
                self._index.extend((i, s) for s in range(ksp.shape[0]))

    def slice_shape(self, scan_id: str) -> tuple[int, int]:
        return tuple(self._shapes[scan_id])

    def header(self, scan_id: str) -> dict:
        """Matrix sizes from ``ismrmrd_header`` and the file's attrs (max, acquisition, ...)."""
        return self._headers[scan_id]

    def maps_path(self, scan_id: str) -> Path:
        path = self.files[self.scan_ids.index(scan_id)]
        return (self.maps_dir or path.parent) / f"{path.name}.maps.h5"

    def _cache_attrs(self, path: Path, calib_width: int) -> dict:
        st = path.stat()
        return {"version": CACHE_VERSION, "source_size": st.st_size, "source_mtime_ns": st.st_mtime_ns,
                **self.espirit, "calib_width": calib_width}

    def _calib_width(self, f: h5py.File) -> int:
        width = self.espirit["calib_width"]
        if "num_low_frequency" in f.attrs:
            width = min(width, int(f.attrs["num_low_frequency"]))
        return width

    def _cache_valid(self, cache: Path, want: dict) -> bool:
        if not cache.is_file():
            return False
        try:
            with h5py.File(cache, "r") as c:
                return all(_plain(c.attrs.get(k)) == _plain(v) for k, v in want.items()) and "maps" in c
        except OSError:
            return False

    def prepare_maps(self, scan_ids=None):
        """Estimate and cache the maps of the given (default: all) volumes that have no valid cache."""
        from tqdm import tqdm

        for scan_id in tqdm(scan_ids or self.scan_ids, desc="ESPIRiT maps", disable=not self.progress):
            self._volume_stats(scan_id)

    def _volume_stats(self, scan_id: str) -> dict:
        """(std, max) of the volume's SENSE target; estimates and caches the maps when needed."""
        if scan_id in self._stats:
            return self._stats[scan_id]
        file_index = self.scan_ids.index(scan_id)
        path, cache = self.files[file_index], self.maps_path(scan_id)
        f = self._open(file_index)
        want = self._cache_attrs(path, self._calib_width(f))
        if not self._cache_valid(cache, want):
            ksp = f["kspace"]
            stats = RunningStats()
            with atomic_h5(cache) as c:
                maps = c.create_dataset("maps", shape=ksp.shape, dtype=np.complex64, chunks=(1, *ksp.shape[1:]))
                for s in range(ksp.shape[0]):
                    with reading(path, FORMAT):
                        y = ksp[s]
                    check_finite({"kspace": y}, str(path), s)
                    m = estimate_maps(y, **{**self.espirit, "calib_width": want["calib_width"]})
                    maps[s] = m
                    stats.add(sense_adjoint(y, m))
                c.attrs.update(want)
                c.attrs.update({"target_std": stats.std, "target_max": stats.max_abs})
            self.maps_estimated += 1
        with open_h5(cache, "coil-map cache") as c:
            self._stats[scan_id] = {"std": float(c.attrs["target_std"]), "max": float(c.attrs["target_max"])}
        return self._stats[scan_id]

    def scale(self, scan_id: str) -> float:
        st = self._volume_stats(scan_id)
        return pick_scale(self.normalize, st["std"], st["max"], str(self.files[self.scan_ids.index(scan_id)]))

    def _mask(self, f: h5py.File, scan_id: str, shape) -> np.ndarray | None:
        if "mask" in f:
            column = f["mask"][()].astype(bool)
        elif self.acceleration is None:
            return None
        else:
            rng = np.random.default_rng(scan_seed(scan_id) if self.fixed_masks else None)
            column = column_mask(shape[-1], self.acceleration, self.center_fraction, self.mask_kind, rng)
        return np.broadcast_to(column[None, :], shape).astype(np.float32)

    def __getitem__(self, index: int) -> dict:
        file_index, s = self._index[index]
        scan_id = self.scan_ids[file_index]
        scale = self.scale(scan_id)  # makes sure the maps cache exists
        with reading(self.files[file_index], FORMAT):
            f = self._open(file_index)
            kspace = f["kspace"][s]
        with open_h5(self.maps_path(scan_id), "coil-map cache") as c, reading(self.maps_path(scan_id), "coil-map cache"):
            maps = c["maps"][s]
        check_finite({"kspace": kspace, "maps": maps}, str(self.files[file_index]), s)
        target = sense_adjoint(kspace, maps)
        return self._item(kspace, maps, target, self._mask(f, scan_id, kspace.shape[-2:]), scale,
                          file_index, s)


def _plain(value):
    """HDF5 attribute → comparable Python value."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value
