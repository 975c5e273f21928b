"""CNN Classroom's engine: datasets, models, training, the model registry and the CLI.

Importing `core` is cheap: TensorFlow is imported only by the functions that need it, so the
dashboard's home page and `python -m core list` start fast.
"""

import os

# oneDNN kernels train the small CNNs about twice as fast on CPUs where TensorFlow leaves them off by default
# (AMD, older Intel). TensorFlow reads this once, when it is first imported, which every core module that
# needs it does after this line. Set it to 0 to opt out.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
