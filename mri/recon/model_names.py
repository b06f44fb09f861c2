"""Names of the benchmark's models (no torch import, so run.py's parsers stay fast)."""

MODELS = ("zf", "cg-sense", "l1-wavelet", "unet", "msense", "dsense", "unrolled-fft", "unrolled-dense",
          "unrolled-monarch", "modl-fft", "modl-dense", "modl-monarch")
UNTRAINED = ("zf", "cg-sense", "l1-wavelet")


def transform_of(name: str) -> str:
    """The Fourier transform kind a model uses ("fft", "dense" or "monarch")."""
    if name in ("msense", "dsense"):
        return {"msense": "monarch", "dsense": "dense"}[name]
    if name.startswith(("unrolled-", "modl-")):
        return name.split("-", 1)[1]
    return "fft"
