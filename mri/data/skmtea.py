"""Reader of the SKM-TEA raw-data track layout (also the layout of our simulated data).

One HDF5 file per scan, all complex64 (see datasets/README.md):

    kspace   (x, ky, kz, echo, coil)   hybrid k-space: already inverse-Fourier-transformed along x
    maps     (x, ky, kz, coil, map)    coil sensitivities
    target   (x, ky, kz, echo, map)    SENSE reconstruction
    masks/poisson_{acc:.1f}x (ky', kz') Poisson-disc masks, ky' ≤ ky and kz' ≤ kz (real SKM-TEA masks
                                       cover the acquired 416×80 centre of the 512×160 matrix and are
                                       zero-padded here to the full matrix)

Each x index is one 2-D (ky, kz) slice.
"""
import numpy as np

from common.errors import ConfigError
from mri.data.h5files import MalformedFileError, check_finite, open_h5, reading, require_dataset
from mri.data.masks import mask_key
from mri.data.slices import RunningStats, SliceDataset, list_h5_files, pick_scale, select_scans

FORMAT = "SKM-TEA"
LAYOUTS = {"kspace": "(x, ky, kz, echo, coil)", "maps": "(x, ky, kz, coil, map)",
           "target": "(x, ky, kz, echo, map)"}


def pad_mask(mask: np.ndarray, shape, where: str) -> np.ndarray:
    """Zero-pad a (h, w) mask centred into ``shape`` (H, W); h ≤ H and w ≤ W or a clear error."""
    if mask.ndim != 2 or mask.shape[0] > shape[0] or mask.shape[1] > shape[1]:
        raise MalformedFileError(
            f"{where}: mask of shape {mask.shape} does not fit the (ky, kz) slice shape {tuple(shape)}; "
            f"expected a 2-D mask no larger than the slice")
    out = np.zeros(shape, dtype=np.float32)
    top, left = (shape[0] - mask.shape[0] + 1) // 2, (shape[1] - mask.shape[1] + 1) // 2
    out[top:top + mask.shape[0], left:left + mask.shape[1]] = mask
    return out


class SkmTeaSlices(SliceDataset):
    """2-D (ky, kz) slices along x of SKM-TEA-layout files, read lazily.

    Args:
        path_or_dir: one .h5 file, a folder of them (one per scan) or a list of files.
        echo: which echo to read (SKM-TEA has 2; simulated data 1 or 2).
        acceleration: e.g. 4.0 to add ``mask`` from ``masks/poisson_4.0x`` (one fixed mask per scan,
            as in SKM-TEA); None for no mask.
        scans: scan ids (file stems, e.g. "MTR_005") or file paths to keep; None keeps all.
        normalize: "std" (default), "max" or "none": kspace and target are divided by that statistic
            of the volume's complex target (this echo, this map), see :mod:`mri.data.slices`.
        map_index: which ESPIRiT map set to use (SKM-TEA stores one).

    Items: see :mod:`mri.data.slices`; kspace/maps (coils, ky, kz), target/mask (ky, kz).
    Volumes of different sizes (a few SKM-TEA scans have other kz) give items of different shapes:
    select scans of one shape (``slice_shape``) or use batch size 1.
    """

    def __init__(self, path_or_dir, echo: int = 0, acceleration: float | None = None, scans=None,
                 normalize: str = "std", map_index: int = 0):
        super().__init__(select_scans(list_h5_files(path_or_dir, FORMAT), scans), normalize)
        self.echo, self.map_index = int(echo), int(map_index)
        self.acceleration = None if acceleration is None else float(acceleration)
        self.mask_key = None if acceleration is None else mask_key(acceleration)
        self._shapes, self._scales = {}, {}
        for i, path in enumerate(self.files):
            with open_h5(path, FORMAT) as f, reading(path, FORMAT):
                nx, ny, nz = self._validate(f)
            self._shapes[path.stem] = (ny, nz)
            self._index.extend((i, x) for x in range(nx))

    def _validate(self, f) -> tuple[int, int, int]:
        where = f.filename
        ds = {k: require_dataset(f, k, 5, "complex", v, FORMAT) for k, v in LAYOUTS.items()}
        nx, ny, nz, ne, nc = ds["kspace"].shape
        expected = {"maps": (nx, ny, nz, nc, None), "target": (nx, ny, nz, ne, None)}
        for key, exp in expected.items():
            got = ds[key].shape
            if any(e is not None and e != g for e, g in zip(exp, got)):
                raise MalformedFileError(
                    f"{where}: '{key}' has shape {got}, expected {tuple('any' if e is None else e for e in exp)} "
                    f"{LAYOUTS[key]} to match kspace {ds['kspace'].shape} {LAYOUTS['kspace']}")
        if not 0 <= self.echo < ne:
            raise ConfigError(f"{where}: echo={self.echo} asked for, the file has {ne} echo(es)")
        n_maps = min(ds["maps"].shape[-1], ds["target"].shape[-1])
        if not 0 <= self.map_index < n_maps:
            raise ConfigError(f"{where}: map_index={self.map_index} asked for, the file has {n_maps} map set(s)")
        if self.mask_key is not None:
            if self.mask_key not in f:
                have = sorted(f["masks"].keys()) if "masks" in f else []
                raise MalformedFileError(
                    f"{where}: no '{self.mask_key}' for acceleration {self.acceleration}; "
                    f"stored masks: {have or 'none'}")
            mask = require_dataset(f, self.mask_key, 2, "bool-or-real", "(ky, kz)", FORMAT)
            pad_mask(np.zeros(mask.shape, bool), (ny, nz), f"{where}: '{self.mask_key}'")
        return nx, ny, nz

    def slice_shape(self, scan_id: str) -> tuple[int, int]:
        """(ky, kz) size of the slices of one scan."""
        return self._shapes[scan_id]

    def scale(self, scan_id: str) -> float:
        """The per-volume divisor (see ``normalize``), computed once per process in slabs of x."""
        if scan_id not in self._scales:
            path = self.files[self.scan_ids.index(scan_id)]
            with reading(path, FORMAT):
                target, stats = self._open(self.scan_ids.index(scan_id))["target"], RunningStats()
                for start in range(0, target.shape[0], 16):
                    slab = target[start:start + 16, :, :, self.echo, self.map_index]
                    if not np.isfinite(slab).all():  # name the first bad slice, not just "NaN scale"
                        first = start + int(np.flatnonzero(~np.isfinite(slab).reshape(len(slab), -1).all(1))[0])
                        check_finite({"target": slab[first - start]}, str(path), first, "x index")
                    stats.add(slab)
            self._scales[scan_id] = pick_scale(self.normalize, stats.std, stats.max_abs, str(path))
        return self._scales[scan_id]

    def __getitem__(self, index: int) -> dict:
        file_index, x = self._index[index]
        path = self.files[file_index]
        with reading(path, FORMAT):
            f = self._open(file_index)
            kspace = f["kspace"][x, :, :, self.echo, :].transpose(2, 0, 1)
            maps = f["maps"][x, :, :, :, self.map_index].transpose(2, 0, 1)
            target = f["target"][x, :, :, self.echo, self.map_index]
            mask = None
            if self.mask_key is not None:
                mask = pad_mask(f[self.mask_key][()], kspace.shape[-2:], f"{path}: '{self.mask_key}'")
            physics = scan_physics(f, kspace.shape[-2:])
        check_finite({"kspace": kspace, "maps": maps, "target": target, "mask": mask}, str(path), x, "x index")
        scan_id = path.stem
        item = self._item(kspace, maps, target, mask, self.scale(scan_id), file_index, x)
        if physics is not None:
            item["physics"] = physics
        return item


def scan_physics(f, shape) -> dict | None:
    """The acquisition physics a simulated scan stores (mri.data.simulate), for oracle-physics models:
    {"b0_field_hz": (H, W) float32 (zeros without B0), "gradient_delay": float (samples),
    "readout_bw_hz": float}; None for files without it (real SKM-TEA scans)."""
    if "gradient_delay" not in f.attrs or "readout_bw_hz" not in f.attrs:
        return None
    key = "mismatch/b0_field_hz"
    field = np.asarray(f[key][()], dtype=np.float32) if key in f else np.zeros(shape, np.float32)
    if field.shape != tuple(shape):
        raise MalformedFileError(f"{f.filename}: '{key}' has shape {field.shape}, expected the slice shape {tuple(shape)}")
    return {"b0_field_hz": field, "gradient_delay": float(f.attrs["gradient_delay"]),
            "readout_bw_hz": float(f.attrs["readout_bw_hz"])}
