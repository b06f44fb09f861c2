"""Deprecated: use `common` directly. Kept as thin aliases so that older imports keep working.

    pick_device(name)              → common.device.resolve_device (DeviceError instead of SystemExit)
    median_time(fn, device, ...)   → common.timing.median_time
    interleaved_times(...)         → common.timing.interleaved_times
    environment(device)            → common.environment.describe_environment
    device_description(device)     → common.environment.device_name
    write_atomically(path, text)   → common.files.write_text_atomic
    write_results(out, stem, payload, markdown) → benchmarks.output.write_results
    markdown_table(header, rows)   → common.tables.markdown_table
"""
from __future__ import annotations

from benchmarks.output import write_results
from common.device import resolve_device as pick_device
from common.environment import describe_environment as environment
from common.environment import device_name as device_description
from common.files import write_text_atomic as write_atomically
from common.tables import markdown_table
from common.timing import interleaved_times, median_time

__all__ = ["device_description", "environment", "interleaved_times", "markdown_table", "median_time", "pick_device",
           "write_atomically", "write_results"]
