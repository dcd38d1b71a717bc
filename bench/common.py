"""Shared by the benchmark scripts: the device's name and results.json bookkeeping."""

from __future__ import annotations

import json
import platform
from pathlib import Path

import torch

RESULTS = Path(__file__).resolve().parent / "results.json"


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def record(line: dict) -> None:
    """Print one JSON line and merge it into results.json (replacing the same bench, preset, device and,
    for judge benchmarks, judge; for book benchmarks, mode and part; for train lines at another batch, batch;
    for train lines of another shape, its overrides)."""
    print(json.dumps(line), flush=True)
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else []

    def same(r: dict) -> tuple:
        return (r["bench"], r["preset"], r["device"], r.get("judge"), r.get("mode"), r.get("part"), r.get("batch"),
                json.dumps(r.get("overrides"), sort_keys=True))

    keep = [r for r in results if same(r) != same(line)]
    RESULTS.write_text(json.dumps(keep + [line], indent=2) + "\n")
