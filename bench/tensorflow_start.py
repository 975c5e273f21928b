"""TensorFlow's start in a fresh process: `import keras` and, inside it, `import ml_dtypes`.

Every TensorFlow start pays for it: the server's preloading (which holds the interpreter pages share), each worker
process before its first training, the command line. requirements.txt keeps ml_dtypes below 0.7: 0.7.0 spent
0.7-1.4 s of its import registering numpy ufunc loops. `--against DIR` alternates the installed ml_dtypes with the
one installed in DIR (`pip install --no-deps --target DIR ml_dtypes==0.7.0`) and prints the ratio.

    python bench/tensorflow_start.py                          # 5 starts with the installed ml_dtypes
    python bench/tensorflow_start.py --against /tmp/ml070     # 5 alternated pairs
    python bench/tensorflow_start.py --quick
"""

import argparse
import json
import os
import statistics
import subprocess
import sys

from common import PROJECT, header, load_average, report

START = """
import json, time
started = time.perf_counter()
import numpy
numpy_done = time.perf_counter()
import ml_dtypes
ml_dtypes_done = time.perf_counter()
import keras
print(json.dumps({"version": ml_dtypes.__version__, "ml_dtypes": ml_dtypes_done - numpy_done,
                  "keras": time.perf_counter() - started}))
"""


def start(extra_path: str | None) -> dict:
    """One fresh process: seconds of `import ml_dtypes` (numpy already imported) and of everything to `import keras`."""
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    if extra_path:
        environment["PYTHONPATH"] = os.pathsep.join([extra_path, environment.get("PYTHONPATH", "")])
    output = subprocess.run([sys.executable, "-c", START], capture_output=True, text=True, check=True, cwd=PROJECT,
                            env=environment).stdout
    return json.loads(output.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--against", help="a folder holding another ml_dtypes (pip install --target)")
    parser.add_argument("--quick", action="store_true")
    arguments = parser.parse_args()
    repeats = 1 if arguments.quick else arguments.repeats
    header("TensorFlow's start in a fresh process")
    kinds = [None, arguments.against] if arguments.against else [None]
    runs = {kind: [] for kind in kinds}
    for repeat in range(repeats):
        for kind in kinds if repeat % 2 == 0 else kinds[::-1]:
            run = start(kind)
            runs[kind].append(run)
            print(f"  start {repeat + 1}, ml_dtypes {run['version']}: import ml_dtypes {run['ml_dtypes']:.3f} s, "
                  f"import keras {run['keras']:.2f} s  [{load_average()}]", flush=True)
    for kind, starts in runs.items():
        version = starts[0]["version"]
        report(f"ml_dtypes {version}{' (installed)' if kind is None else ''}: import ml_dtypes / import keras (medians)",
               f"{statistics.median(run['ml_dtypes'] for run in starts):.3f} s / "
               f"{statistics.median(run['keras'] for run in starts):.2f} s")
    if arguments.against:
        installed, other = (statistics.median(run["keras"] for run in runs[kind]) for kind in kinds)
        report("import keras, the installed ml_dtypes ÷ the other (medians)", f"{installed / other:.3f}")


if __name__ == "__main__":
    main()
