"""The one machine line every benchmark prints first (and records in its results).

    from machine import machine_line      # the scripts run as `python benchmarks/bench_x.py`
    print(machine_line("cpu"))
"""

from __future__ import annotations

import os
import platform
from pathlib import Path


def machine_line(device: str = "cpu") -> str:
    """CPU model, core count, GPU (for a CUDA device), torch version and threads, load average."""
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    gpu = f", GPU {torch.cuda.get_device_name()}" if str(device).startswith("cuda") else ""
    return (f"{cpu}, {os.cpu_count()} CPUs{gpu}; torch {torch.__version__}, {torch.get_num_threads()} threads; "
            f"load average {load:.1f}")
