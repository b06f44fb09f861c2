"""Classical reconstructions without training, run slice by slice on the CPU:

    cg-sense     sigpy `SenseRecon`: ℓ2-regularised least squares by conjugate gradient
    l1-wavelet   min_x ½‖A x − y‖² + λ‖W x‖₁ by FISTA on sigpy's linops, with *translation-invariant*
                 regularisation: every iteration the wavelet prox runs on a randomly shifted image
                 (cycle spinning, as BART's `pics -l1` does with its random shifts), which removes the
                 blocky artefacts of a fixed decimated wavelet and is what closes the gap to BART.
                 The wavelet family is an option (`wavelet`, any pywt name; default "db4").
    bart-l1, bart-l2   `bart pics -l1 / -l2` run through the BART executable itself (the field's
                 reference implementation); UserError when `bart` is not on PATH.

Conventions shared with BART (checked in tests/mri/recon/test_bart_baselines.py): our SENSE operator is the
centred orthonormal DFT, which is BART's `pics` operator; our maps (coils, H, W) are BART's (H, W, 1, coils);
`pics` is run with `-w 1` (no automatic data scaling), so its λ (`-r`) is the λ of the same objective here.

λ defaults are for k-space normalised by the target volume's standard deviation (the readers'
default): images of order 1, per-coil noise ~1e-2 of the signal, so λ = 1e-2 (CG-SENSE, bart-l2)
and λ = 1e-3 (ℓ1) are in the usual range; `tune_lambda` picks λ (and `tune_l1_wavelet` λ and the
wavelet) on given slices.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile

import numpy as np
import torch
from torch import nn

METHODS = {"cg-sense": 1e-2, "l1-wavelet": 1e-3, "bart-l1": 1e-3, "bart-l2": 1e-2}
#: wavelet families offered to the λ/wavelet search (pywt names)
WAVELETS = ("haar", "db2", "db4", "sym4", "coif1")


def bart_executable() -> str:
    """Path of `bart`, or UserError saying how to get it."""
    from common.errors import UserError

    path = shutil.which("bart")
    if path is None:
        raise UserError("the bart-l1 / bart-l2 baselines run the BART toolbox, but no `bart` executable is on PATH; "
                        "install it (Debian/Ubuntu: apt-get install bart) or drop these models")
    return path


class ClassicalRecon(nn.Module):
    """Args: method (one of METHODS); lamda (None: the default above); max_iter; wavelet (pywt name,
    l1-wavelet only); random_shifts (l1-wavelet only: cycle spinning, default on); seed (of the shifts).

    forward(kspace, maps, mask) as the learned models (torch tensors, any device) → (B, H, W) complex
    on the input's device; the work runs in numpy on the CPU.
    """

    def __init__(self, method: str, lamda: float | None = None, max_iter: int = 30, wavelet: str = "db4",
                 random_shifts: bool = True, seed: int = 0):
        super().__init__()
        if method not in METHODS:
            raise ValueError(f"classical method must be one of {sorted(METHODS)}, got {method!r}")
        self.method, self.max_iter = method, int(max_iter)
        self.lamda = METHODS[method] if lamda is None else float(lamda)
        self.wavelet, self.random_shifts, self.seed = str(wavelet), bool(random_shifts), int(seed)
        self.transform_kind = "fft"
        if method.startswith("bart"):
            bart_executable()

    def extra_repr(self):
        extra = f", wavelet={self.wavelet!r}, random_shifts={self.random_shifts}" if self.method == "l1-wavelet" else ""
        return f"method={self.method!r}, lamda={self.lamda}, max_iter={self.max_iter}{extra}"

    def reconstruct_slice(self, kspace: np.ndarray, maps: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
        """kspace, maps (coils, H, W), mask (H, W) → image (H, W) complex64."""
        if self.method == "cg-sense":
            import sigpy.mri.app as app

            recon = app.SenseRecon(kspace, maps, lamda=self.lamda, weights=mask, show_pbar=False,
                                   max_iter=self.max_iter)
            return np.asarray(recon.run(), dtype=np.complex64)
        if self.method == "l1-wavelet":
            return l1_wavelet_fista(kspace, maps, mask, self.lamda, self.max_iter, self.wavelet,
                                    self.random_shifts, self.seed)
        return bart_pics(kspace, maps, mask, self.lamda, self.max_iter, self.method.split("-")[1])

    @torch.no_grad()
    def forward(self, kspace, maps, mask=None):
        ks, mp = kspace.detach().cpu().numpy(), maps.detach().cpu().numpy()
        mk = None if mask is None else mask.detach().cpu().numpy()
        out = [self.reconstruct_slice(ks[b], mp[b], None if mk is None else mk[b]) for b in range(ks.shape[0])]
        return torch.from_numpy(np.stack(out)).to(kspace.device)


def l1_wavelet_fista(kspace, maps, mask, lamda: float, max_iter: int, wavelet: str = "db4",
                     random_shifts: bool = True, seed: int = 0) -> np.ndarray:
    """FISTA on ½‖M F S x − y‖² + λ‖W x‖₁ (sigpy Sense and Wavelet linops, step 1/L with L the largest
    eigenvalue of AᴴA by power iteration). With random_shifts the soft threshold of iteration k is taken
    in the wavelet domain of x shifted by a random (dy, dx) < 2^levels and shifted back: the prox of a
    randomly translated ‖W·‖₁, the stochastic translation-invariant regulariser BART uses.
    kspace, maps (coils, H, W), mask (H, W) → (H, W) complex64."""
    import sigpy as sp
    import sigpy.mri as mr

    ks = np.asarray(kspace, np.complex64)
    shape = ks.shape[1:]
    A = mr.linop.Sense(np.asarray(maps, np.complex64), weights=None if mask is None else np.asarray(mask, np.float32))
    y = ks if mask is None else ks * np.asarray(mask, np.float32)
    W = sp.linop.Wavelet(shape, wave_name=wavelet)
    AH_y = A.H(y)
    L = float(sp.app.MaxEig(A.H * A, dtype=np.complex64, show_pbar=False, max_iter=30).run())
    step = 1.0 / (L * 1.01)
    rng = np.random.default_rng(seed)
    levels = 2 ** int(np.log2(max(min(shape), 2)) // 2)
    x = AH_y.copy() * 0
    z, t = x.copy(), 1.0
    for _ in range(max_iter):
        v = z - step * (A.H(A(z)) - AH_y)
        shift = tuple(int(s) for s in rng.integers(0, levels, size=2)) if random_shifts else (0, 0)
        vs = np.roll(v, shift, axis=(0, 1))
        ws = W(vs)
        x_new = np.roll(W.H(sp.soft_thresh(step * lamda, ws)), (-shift[0], -shift[1]), axis=(0, 1))
        t_new = (1 + np.sqrt(1 + 4 * t * t)) / 2
        z = x_new + ((t - 1) / t_new) * (x_new - x)
        x, t = x_new, t_new
    return np.asarray(x, dtype=np.complex64)


def bart_pics(kspace, maps, mask, lamda: float, max_iter: int, reg: str = "l1") -> np.ndarray:
    """`bart pics -{reg} -r λ -i max_iter -w 1 -p mask` on one slice, through .cfl files in a
    temporary folder. reg "l1" (ℓ1-wavelet, BART's random shifts) or "l2" (Tikhonov).
    kspace, maps (coils, H, W), mask (H, W) → (H, W) complex64."""
    from mri.data.bart_files import read_cfl, write_cfl

    from common.errors import UserError

    bart = bart_executable()
    ks = np.asarray(kspace, np.complex64)
    coils, H, W = ks.shape
    mk = np.ones((H, W), np.float32) if mask is None else np.asarray(mask, np.float32)
    to_bart = lambda a: np.transpose(a, (1, 2, 0))[:, :, None, :]  # (C, H, W) → (H, W, 1, C)  # noqa: E731
    with tempfile.TemporaryDirectory(prefix="bart-pics-") as tmp:
        write_cfl(os.path.join(tmp, "ksp"), to_bart(ks * mk))
        write_cfl(os.path.join(tmp, "sens"), to_bart(np.asarray(maps, np.complex64)))
        write_cfl(os.path.join(tmp, "pat"), mk[:, :, None])
        cmd = [bart, "pics", f"-{reg}", "-r", repr(float(lamda)), "-i", str(int(max_iter)),
               "-w", "1", "-p", os.path.join(tmp, "pat"), os.path.join(tmp, "ksp"), os.path.join(tmp, "sens"),
               os.path.join(tmp, "out")]
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode != 0:
            raise UserError(f"bart pics failed (exit {res.returncode}): {res.stderr.strip()[-300:]}")
        return read_cfl(os.path.join(tmp, "out")).reshape(H, W).astype(np.complex64)


def _mean_psnr(model: ClassicalRecon, slices: list[dict]) -> float:
    from mri.recon.metrics import psnr

    return float(np.mean([psnr(abs(s["target"]), abs(model.reconstruct_slice(s["kspace"], s["maps"], s["mask"])),
                               float(abs(s["target"]).max())) for s in slices]))


def tune_lambda(method: str, slices: list[dict], grid=None, max_iter: int = 30, **options) -> float:
    """λ from `grid` (default: 4 decades around the default) with the best mean magnitude PSNR on the
    given slices (dicts with numpy kspace (undersampled), maps, mask, target); `options` go to
    ClassicalRecon (e.g. wavelet="sym4")."""
    grid = grid or [METHODS[method] * f for f in (0.1, 0.3, 1, 3, 10)]
    scores = [_mean_psnr(ClassicalRecon(method, lam, max_iter, **options), slices) for lam in grid]
    return float(grid[int(np.argmax(scores))])


def tune_l1_wavelet(slices: list[dict], grid=None, wavelets=WAVELETS, max_iter: int = 30) -> dict:
    """λ and wavelet of l1-wavelet jointly, best mean magnitude PSNR on `slices` (validation):
    → {"lamda": float, "wavelet": str, "psnr": float, "scores": {(wavelet, λ): psnr}}."""
    grid = grid or [METHODS["l1-wavelet"] * f for f in (0.1, 0.3, 1, 3, 10)]
    scores = {(w, float(lam)): _mean_psnr(ClassicalRecon("l1-wavelet", lam, max_iter, wavelet=w), slices)
              for w in wavelets for lam in grid}
    (w, lam), best = max(scores.items(), key=lambda kv: kv[1])
    return {"lamda": lam, "wavelet": w, "psnr": best, "scores": scores}
