"""Checkpoints that cannot run code: only tensors and plain values, read with `weights_only=True`.

`torch.load(weights_only=False)` unpickles arbitrary objects, so a checkpoint someone shared could run
code on load. Ours hold dicts, lists, tuples, str/int/float/bool/None and tensors only (configs as
dicts, RNG states as tensors) and are always read with weights_only=True. A file that needs more (an
old or foreign checkpoint) is refused with CheckpointError unless the caller passes `trust=True`
(`--trust-checkpoint` on the command line) for a file the user trusts.
"""
from __future__ import annotations

import pickle
from pathlib import Path

import torch

from .errors import CheckpointError
from .files import save_torch_atomic

_PLAIN = (str, int, float, bool, type(None))
#: Bumped when saved weights change meaning. 2: learnable transforms hold the unscaled (unit-modulus) DFT,
#: the norm applied as a fixed factor; a version-1 checkpoint's transforms would load with the wrong scale.
FORMAT_VERSION = 2


def check_plain(obj, where: str = "checkpoint") -> None:
    """Raise TypeError if `obj` holds anything but tensors, plain scalars and dict/list/tuple of them."""
    if isinstance(obj, (torch.Tensor,) + _PLAIN):
        return
    if isinstance(obj, dict):
        for key, value in obj.items():
            if not isinstance(key, (str, int)):
                raise TypeError(f"{where}: key {key!r} is a {type(key).__name__}; use str or int keys")
            check_plain(value, f"{where}[{key!r}]")
        return
    if isinstance(obj, (list, tuple)):
        for i, value in enumerate(obj):
            check_plain(value, f"{where}[{i}]")
        return
    raise TypeError(f"{where} is a {type(obj).__name__}; a checkpoint may hold only tensors, "
                    "str/int/float/bool/None and dicts/lists/tuples of them")


def save_checkpoint(state: dict, path) -> Path:
    """Check that `state` is plain, stamp it with FORMAT_VERSION, then torch.save it atomically."""
    state = {**state, "format_version": FORMAT_VERSION}
    check_plain(state)
    return save_torch_atomic(state, path)


def load_checkpoint(path, map_location="cpu", trust: bool = False) -> dict:
    """Load a checkpoint with weights_only=True (or, with trust=True, the full unpickler).

    Raises CheckpointError when the file is missing, truncated/corrupt, needs code to load, or was
    written in another FORMAT_VERSION (its weights would mean something else).
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint", hint="give a best.pt / last.pt written by a training run")
    try:
        state = torch.load(path, map_location=map_location, weights_only=not trust)
    except pickle.UnpicklingError as error:
        # the weights-only unpickler names the global it refused ("Unsupported global" / "GLOBAL x is
        # blocked"): the file carries objects whose unpickling could run code
        if "GLOBAL" in str(error).upper():
            raise CheckpointError(
                f"{path}: refused — the file holds objects other than tensors and plain values, which would run "
                "code when unpickled", hint="only load checkpoints you trust, with --trust-checkpoint") from None
        raise _corrupt(path) from None
    except (RuntimeError, EOFError, OSError, ValueError, KeyError, AttributeError, IndexError):
        raise _corrupt(path) from None
    version = state.get("format_version", 1) if isinstance(state, dict) else None
    if version != FORMAT_VERSION:
        raise CheckpointError(f"{path}: checkpoint format {version}, this version reads format {FORMAT_VERSION} "
                              "(learned transforms are stored unscaled since format 2; older weights would load "
                              "with the wrong scale)", hint="retrain the model with this version")
    return state


def _corrupt(path: Path) -> CheckpointError:
    # the library's own text ("PytorchStreamReader failed …") stays in the chain for --debug only
    return CheckpointError(f"{path}: truncated or corrupt checkpoint (not readable by torch.load) — re-copy it or "
                           "train again")
