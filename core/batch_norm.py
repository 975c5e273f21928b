"""Batch normalisation trained on TensorFlow's fused kernel, as tf.keras 2 did.

Keras 3 trains a BatchNormalization layer op by op on TensorFlow: the batch's mean, its variance, then the
normalisation, each a kernel of its own, and as many again for the gradients. TensorFlow has one fused kernel for the
whole step on image batches (`FusedBatchNormV3`), which tf.keras 2 used. On this project's CNNs the op-by-op version
makes training about 1.5x slower on a CPU (docs/performance.md). `use_fused_kernel()` makes Keras's own
`BatchNormalization` layer train on the fused kernel when the batch is a 4-D float32 image batch with channels last;
prediction and every other case run Keras's code unchanged. The arithmetic is the same (tests/test_batch_norm.py
compares outputs, gradients and the moving statistics), and the models keep Keras's standard layer, so a downloaded
.keras file loads in plain Keras.
"""

from core.backend import keras, tf

_KERAS_CALL = keras.layers.BatchNormalization.call


def use_fused_kernel(fused: bool = True) -> None:
    """Make keras.layers.BatchNormalization train on TensorFlow's fused kernel where it can (idempotent); with
    `fused=False`, on Keras's own code again (bench/batch_norm.py compares the two)."""
    keras.layers.BatchNormalization.call = _call if fused else _KERAS_CALL


def uses_fused_kernel() -> bool:
    """True once `use_fused_kernel()` has run in this process."""
    return keras.layers.BatchNormalization.call is _call


def _fusable(layer, inputs) -> bool:
    """The cases FusedBatchNormV3 computes exactly as Keras does: NHWC float32 images, plain batch norm."""
    return (keras.backend.backend() == "tensorflow" and len(inputs.shape) == 4 and layer.axis in (3, -1)
            and inputs.dtype == tf.float32 and layer.center and layer.scale
            and not getattr(layer, "renorm", False) and not getattr(layer, "synchronized", False)  # newer Keras options
            and layer.epsilon > 1.001e-5)


def _call(self, inputs, training=None, mask=None):
    """BatchNormalization.call: the fused kernel for a training step on an image batch, else Keras's own."""
    if not (training and self.trainable) or mask is not None or not _fusable(self, inputs):
        return _KERAS_CALL(self, inputs, training=training, mask=mask)
    empty = tf.constant([], dtype=tf.float32)
    outputs, mean, variance, *_ = tf.raw_ops.FusedBatchNormV3(
        x=inputs, scale=self.gamma, offset=self.beta, mean=empty, variance=empty,
        epsilon=self.epsilon, data_format="NHWC", is_training=True)
    # The kernel normalises with the batch's variance but returns it times n / (n - 1) (Bessel's correction);
    # Keras's moving variance averages the uncorrected one.
    count = tf.cast(tf.reduce_prod(tf.shape(inputs)[:-1]), tf.float32)
    variance = variance * (count - 1.0) / tf.maximum(count, 1.0)
    self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
    self.moving_variance.assign(self.moving_variance * self.momentum + variance * (1.0 - self.momentum))
    return outputs
