"""TensorFlow and Keras, imported one way: every module of the app that uses them imports them from here.

Two threads of the server that entered TensorFlow by different first modules deadlocked on a fresh server: the
background preloading imported `keras` (which holds `tensorflow.python.trackable.data_structures` while it imports
`tensorflow`), while Augmentation, opened 1.5 s after the home page, ran `from tensorflow import keras` (which holds
`tensorflow` while it imports `data_structures`). Python broke the cycle with a `_DeadlockError` in the page, and
TensorFlow stayed half-imported: every page that needed it failed until the server was restarted ("Registering two
gradient with name 'ReduceDataset'"). Entered here, the second thread waits at this module's own import lock until the
first has imported both (tests/test_structure.py checks that no other module imports them first).
"""

import keras
import tensorflow as tf

__all__ = ["keras", "tf"]
