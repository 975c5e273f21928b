"""TensorFlow's start-up noise, kept off the command line unless asked for (`python -m core --verbose`).

Importing TensorFlow prints lines such as "oneDNN custom operations are on", "Could not find cuda
drivers" and, on a machine without a GPU, "E0000 ... failed call to cuInit: UNKNOWN ERROR (303)". They
are written by TensorFlow's C++ code straight to file descriptor 2 before its log level is read, so no
environment variable hides them. `import_tensorflow_quietly` captures descriptor 2 while TensorFlow
starts, then passes on every line that is not known noise: real warnings and errors still show.
"""

import contextlib
import logging
import os
import re
import sys
import tempfile
from pathlib import Path

# Lines TensorFlow prints on every start that say nothing a user can act on.
STARTUP_NOISE = [
    re.compile(r"^WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR$"),
    re.compile(r"^I\d{4} "),  # C++ information lines (oneDNN on, no CUDA drivers, CPU features...)
    re.compile(r"^To enable the following instructions: .*rebuild TensorFlow with the appropriate compiler flags\.$"),
]
# With no NVIDIA driver on the machine, TensorFlow's CUDA build still tries it and logs an error that means nothing.
NO_GPU_NOISE = re.compile(r"^E\d{4} .*failed call to cuInit")
# Python-side warnings that are expected when one process trains several models one after another.
RETRACING_WARNING = "triggered tf.function retracing"


def import_tensorflow_quietly():
    """Import TensorFlow and find its devices with the start-up noise filtered out; return the module."""
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]  # started already: whatever it printed has been printed
    with _filtered_stderr():
        from core.backend import tf

        tf.config.list_physical_devices()  # the CUDA probe happens here, not at import
    logging.getLogger("tensorflow").addFilter(drop_retracing_warnings)
    return tf


def is_noise(line: str) -> bool:
    """True for a line of TensorFlow's start-up output that a user cannot act on."""
    if any(pattern.match(line) for pattern in STARTUP_NOISE):
        return True
    return bool(NO_GPU_NOISE.match(line)) and not has_nvidia_driver()


def has_nvidia_driver() -> bool:
    """Whether an NVIDIA kernel driver is loaded: without one, a failed cuInit is expected, not an error."""
    return Path("/proc/driver/nvidia/version").exists()


def drop_retracing_warnings(record: logging.LogRecord) -> bool:
    """A logging filter: False for TensorFlow's "triggered tf.function retracing", expected when one process uses
    several models one after another (a worker training them, the server predicting with them)."""
    return RETRACING_WARNING not in record.getMessage()


@contextlib.contextmanager
def _filtered_stderr():
    """Send file descriptor 2 to a temporary file for the block, then replay the lines that are not noise."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            lines = captured.read().decode(errors="replace").splitlines()
            kept = [line for line in lines if not is_noise(line)]
            if kept:
                print("\n".join(kept), file=sys.stderr, flush=True)
