"""2-D Darcy flow −∇·(a ∇u) = f on (0, 1)² with u = 0 on the boundary — the FNO Darcy benchmark.

The coefficient is a thresholded random field: a = 12 where the cosine-series GRF (α = 2, τ = 3, see
`pde.data.grf.NeumannGRF`) is ≥ 0 and a = 3 elsewhere; f = 1. The equation is discretised with the
5-point finite-difference stencil in flux form on the S×S nodes x_i = i/(S−1) (boundary nodes
included, as in the published 421² files), the coefficient on each cell edge being the mean of its two
nodes, and solved with a sparse direct solver (SciPy's SuperLU).

Difference from the original MATLAB ``solve_gwf.m``: it spline-interpolates the coefficient from cell
centres to nodes and the solution back; here the coefficient is taken on the nodes directly.
"""
import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import spsolve

from pde.data.grf import NeumannGRF, sample_generators


def darcy_matrix(coeff: np.ndarray) -> sp.csc_matrix:
    """The 5-point operator −∇·(a∇·) on the interior nodes of an S×S node grid, ((S−2)², (S−2)²).

    Unknown (i, j), 1 ≤ i, j ≤ S−2, has index (i−1)·(S−2) + (j−1) (row-major); h = 1/(S−1).
    """
    s = coeff.shape[0]
    if coeff.ndim != 2 or coeff.shape[1] != s or s < 3:
        raise ValueError(f"coeff must be (S, S) with S >= 3, got shape {coeff.shape}")
    h2 = (1.0 / (s - 1)) ** 2
    n = s - 2
    a = np.asarray(coeff, dtype=np.float64)
    inner = a[1:-1, 1:-1]
    # Edge coefficients between each interior node and its four neighbours.
    north, south = (inner + a[:-2, 1:-1]) / 2, (inner + a[2:, 1:-1]) / 2
    west, east = (inner + a[1:-1, :-2]) / 2, (inner + a[1:-1, 2:]) / 2
    index = np.arange(n * n).reshape(n, n)
    rows, cols, vals = [index.ravel()], [index.ravel()], [(north + south + west + east).ravel() / h2]
    for edge, di, dj in ((north, -1, 0), (south, 1, 0), (west, 0, -1), (east, 0, 1)):
        i0, i1 = max(0, -di), n - max(0, di)
        j0, j1 = max(0, -dj), n - max(0, dj)
        rows.append(index[i0:i1, j0:j1].ravel())
        cols.append(index[i0 + di:i1 + di, j0 + dj:j1 + dj].ravel())
        vals.append(-edge[i0:i1, j0:j1].ravel() / h2)
    return sp.csc_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n * n, n * n))


def darcy_2d(coeff: np.ndarray, forcing: float | np.ndarray = 1.0) -> np.ndarray:
    """Solve −∇·(a∇u) = f with u = 0 on the boundary for one coefficient.

    Args:
        coeff: a on the S×S nodes (boundary included), positive.
        forcing: f, a constant or an (S, S) array (boundary values ignored).

    Returns: u, (S, S) float64, zero on the boundary.
    """
    coeff = np.asarray(coeff, dtype=np.float64)
    if not np.all(coeff > 0):
        raise ValueError("the Darcy coefficient must be positive everywhere")
    s = coeff.shape[0]
    rhs = np.broadcast_to(np.asarray(forcing, dtype=np.float64), (s, s))[1:-1, 1:-1].ravel()
    u = np.zeros((s, s))
    u[1:-1, 1:-1] = spsolve(darcy_matrix(coeff), rhs, permc_spec="MMD_AT_PLUS_A").reshape(s - 2, s - 2)
    return u


def threshold_coefficient(field: np.ndarray, high: float = 12.0, low: float = 3.0) -> np.ndarray:
    """a = high where field ≥ 0, low elsewhere."""
    return np.where(field >= 0, high, low)


def sample_shapes(params: dict) -> dict:
    res = params["res"]
    return {"coeff": (res, res), "sol": (res, res)}


def generate_batch(params: dict, seed: int, start: int, count: int, device="cpu", progress=False) -> dict:
    """Samples start .. start+count−1 of a Darcy dataset: coeff, sol (count, res, res) float32.

    params: gen_res, res, alpha, tau, coeff_high, coeff_low, forcing. The sparse solves run on the CPU
    whatever `device` says. Stored nodes are every ((gen_res−1)/(res−1))-th node (421 → 85 keeps every 5th).
    """
    gen_res, res = params["gen_res"], params["res"]
    if (gen_res - 1) % (res - 1):
        raise ValueError(f"res−1 = {res - 1} must divide gen_res−1 = {gen_res - 1} (node sub-sampling)")
    stride = (gen_res - 1) // (res - 1)
    fields = NeumannGRF(gen_res, params["alpha"], params["tau"]).sample(sample_generators(seed, start, count))
    coeff = threshold_coefficient(fields, params["coeff_high"], params["coeff_low"])
    sol = np.stack([darcy_2d(c, params["forcing"]) for c in coeff])
    return {"coeff": coeff[:, ::stride, ::stride].astype(np.float32),
            "sol": sol[:, ::stride, ::stride].astype(np.float32)}
