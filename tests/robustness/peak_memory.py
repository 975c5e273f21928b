"""Peak memory of one input, measured in a fresh process: `measure(operation, path, root)` -> Measured.

The child imports what the operation needs, resets its peak resident set (Linux's /proc/self/clear_refs, "5"),
runs the operation once on the file, and reports how far the peak rose above the resident set before it, with
the outcome (accepted, or refused and the message). Run as a script, it is that child:

    python tests/robustness/peak_memory.py OPERATION PATH ROOT
"""

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]
OPERATIONS = ("photo", "wide_model_photo", "zip", "folder", "model")
MODEL_ADDRESS_SPACE = 8 * 2**30  # a model import that regressed fails in the child instead of filling the machine
PHOTO_INPUT_SHAPE = (150, 150, 3)  # the course's photo networks
WIDE_INPUT_SHAPE = (1, 512, 3)  # an imported model's input that once made Predict draw a 1024 x 524,288 canvas


@dataclass
class Measured:
    """What one input did to a fresh process: its outcome and how much its peak memory rose."""

    outcome: str  # "accepted" or "refused"
    message: str  # the refusal, or the notes and skipped files of an acceptance
    peak_mb: float


def measure(operation: str, path: Path, root: Path, timeout: int = 180) -> Measured:
    """Run one operation on one file in a fresh Python process and return what it did."""
    result = subprocess.run([sys.executable, __file__, operation, str(path), str(root)], cwd=PROJECT,
                            capture_output=True, text=True, timeout=timeout,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert result.returncode == 0, f"{operation} {path.name} crashed: {result.stderr[-2000:]}"
    return Measured(**json.loads(result.stdout.strip().splitlines()[-1]))


def _status_mb(field: str) -> float:
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith(field + ":"))
    return int(line.split()[1]) / 1024


def _run(operation: str, path: Path, root: Path) -> tuple[float, str, str]:
    import numpy as np

    from core.errors import CoreError
    from core.folders import import_folder, import_zip
    from core.imaging import photo_to_input
    from core.prediction import display_region, display_size

    def start():
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")  # the peak resident set starts again from the current one
        return _status_mb("VmRSS")

    try:
        if operation in ("photo", "wide_model_photo"):
            shape = PHOTO_INPUT_SHAPE if operation == "photo" else WIDE_INPUT_SHAPE
            data = path.read_bytes()
            baseline = start()
            prepared, image = photo_to_input(data, path.name, shape)
            photo = display_size(image)
            display_region(np.asarray(photo.convert("RGB")), shape)
            return baseline, "accepted", "; ".join(prepared.notes)
        if operation == "model":
            import resource

            import keras

            from core.registry import Registry

            keras.ops.convert_to_tensor([1.0]) + 1  # TensorFlow's runtime starts before the baseline
            resource.setrlimit(resource.RLIMIT_AS, (MODEL_ADDRESS_SPACE, MODEL_ADDRESS_SPACE))
            baseline = start()
            entry = Registry(root).import_model(path)
            return baseline, "accepted", entry.card.title
        baseline = start()
        report = (import_zip if operation == "zip" else import_folder)(path, root)
        return baseline, "accepted", "; ".join(f"{file}: {reason}" for file, reason in report.skipped)
    except CoreError as error:
        return baseline, "refused", str(error)


if __name__ == "__main__":
    sys.path.insert(0, str(PROJECT))
    name, file, registry_root = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    if name not in OPERATIONS:
        raise SystemExit(f"operation must be one of {OPERATIONS}. Received: {name!r}")
    before, outcome, message = _run(name, file, registry_root)
    peak = _status_mb("VmHWM") - before
    print(json.dumps({"outcome": outcome, "message": message, "peak_mb": round(peak, 1)}))
