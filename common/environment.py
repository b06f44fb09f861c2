"""What a result was measured on: device, versions, threads, machine load and the command."""
from __future__ import annotations

import importlib
import os
import platform
import sys

import torch


def device_name(device: torch.device) -> str:
    """"NVIDIA H200" or "x86_64 CPU, 2 threads"."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{platform.processor() or platform.machine()} CPU, {torch.get_num_threads()} threads"


def describe_environment(device="cpu") -> dict:
    """Device, versions (python, torch, triton, neuraloperator), threads, load average and command line."""
    env = {"device": device_name(device), "python": sys.version.split()[0], "torch": torch.__version__,
           "threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
           "command": " ".join(["python"] + sys.argv)}
    try:
        env["load_average_1min"] = os.getloadavg()[0]
    except OSError:
        env["load_average_1min"] = None
    for module in ("triton", "neuralop"):
        try:
            env[module] = importlib.import_module(module).__version__
        except Exception:  # missing or broken optional dependency: record that, do not fail the benchmark
            env[module] = None
    return env
