"""One way to choose a device: `resolve_device("auto")` is CUDA when torch sees one, else the CPU."""
from __future__ import annotations

import torch

from .errors import DeviceError

DEVICE_CHOICES = "auto, cpu, cuda or cuda:N"


def resolve_device(name: str = "auto", local_rank: int = 0) -> torch.device:
    """The torch.device for `name` ("auto", "cpu", "cuda", "cuda:N").

    "cuda" without an index means GPU `local_rank` (the process's GPU under torchrun).
    Raises DeviceError when CUDA is asked for and torch sees none, or the name is not a device.
    """
    name = (name or "auto").strip()
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise DeviceError(f"unknown device {name!r}; expected {DEVICE_CHOICES}") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(f"device {name!r} was asked for but torch sees no CUDA device",
                              hint="use --device cpu (or auto)")
        if device.index is None:
            device = torch.device("cuda", local_rank)
        if device.index >= torch.cuda.device_count():
            raise DeviceError(f"device {name!r} does not exist: torch sees {torch.cuda.device_count()} GPU(s)")
    elif device.type != "cpu":
        raise DeviceError(f"device {name!r} is not supported; expected {DEVICE_CHOICES}")
    return device
