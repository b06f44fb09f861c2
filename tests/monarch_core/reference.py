"""Independent references for Monarch products, written from the definition with explicit matrices
(torch.block_diag and permutation matrices), sharing no code with monarch_core."""
import torch


def permutation_matrix(l, r, dtype):
    """Matrix of 'read a length r·l vector as (r, l), transpose to (l, r), flatten'."""
    P = torch.zeros(r * l, r * l, dtype=dtype)
    for a in range(l):
        for alpha in range(r):
            P[a * r + alpha, alpha * l + a] = 1
    return P


def monarch_dense_reference(w1, w2):
    """Dense M = P_out · blockdiag(w2) · P_mid · blockdiag(w1) for factors w1 (k,q,p), w2 (l,s,r)."""
    k, q, p = w1.shape
    l, s, r = w2.shape
    B1 = torch.block_diag(*w1)  # (k·q, k·p)
    B2 = torch.block_diag(*w2)  # (l·s, l·r)
    P_mid = permutation_matrix(l, r, w1.dtype)  # (l·r, k·q)
    # P_out maps v (flat (l, s)) to y (flat (s, l)): y[t·l + a] = v[a·s + t]
    P_out = torch.zeros(s * l, l * s, dtype=w1.dtype)
    for a in range(l):
        for t in range(s):
            P_out[t * l + a, a * s + t] = 1
    return P_out @ B2 @ P_mid @ B1
