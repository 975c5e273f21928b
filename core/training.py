"""Training: compile a model for its task, fit it with live progress, stop on target or on request, evaluate.

This module imports TensorFlow. It knows nothing of the registry or the queue: `core.engines` calls
`train_and_evaluate` and publishes what it returns.
"""

import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np

from core.backend import keras  # first: core.backend says why
from core import autotuning, batch_norm
from core.card import ModelCard, trained_card
from core.config import FINE_TUNE_RATE_DIVISOR, TrainConfig
from core.datasets import check_trainable, load_dataset
from core.errors import TrainingCancelled
from core.evaluation import Evaluation, evaluate
from core.guide import counted
from core.history import EpochRow, History
from core.models import build_model, head, set_fine_tuning
from core.network_view import compute_first_view, first_view_bytes
from core.pipelines import streams_from_disk, training_data, validation_data

logger = logging.getLogger(__name__)

CANCEL_CHECK_SECONDS = 0.25
BATCH_REPORT_SECONDS = 0.5  # how often the first epoch's batch count is reported (it lands in SQLite)
# Images trained per call into TensorFlow: fewer Python round trips per epoch. A dense network's batch is
# so quick that the round trips dominate (the fast DNN: 13.6 s with 512, 9.0 s with 4,096, 8.6 s with
# 16,384); a CNN's batches are slow enough that more per call gains nothing and delays Cancel.
IMAGES_PER_EXECUTION = {"dnn": 8192, "cnn": 512}
EVALUATION_BATCH = 256
EVALUATION_PIXELS_PER_BATCH = 256 * 64 * 64  # 256 images up to 64x64; 46 at 150x150

batch_norm.use_fused_kernel()  # Keras 3's op-by-op batch norm made the fast CNN's epochs about 1.5x slower
autotuning.set_keras_arrays_tuned(False)  # tf.data's tuning thread could hold a finished epoch for seconds


@dataclass
class EpochProgress:
    """What a student sees after each epoch."""

    epoch: int
    epochs: int
    loss: float
    accuracy: float
    val_loss: float
    val_accuracy: float
    seconds: float
    eta_seconds: float
    phase: int | None = None  # two-phase fine-tuning: 1 trains the head alone, 2 the head and the base's top layers

    def to_dict(self) -> EpochRow:
        row = asdict(self)
        if row["phase"] is None:
            del row["phase"]  # only fine-tuning histories carry phases
        return row


@dataclass
class TrainResult:
    """A fitted model with its per-epoch history."""

    model: object
    history: History
    seconds: float
    stopped_reason: str | None


@dataclass
class TrainedModel:
    """A model trained and evaluated from one config: everything the registry publishes."""

    model: object
    history: History
    evaluation: Evaluation
    card: ModelCard
    first_view: bytes | None = None  # what Inside the network shows first (view.npz), published with the model


def make_optimizer(name: str, learning_rate):
    """Adam, SGD (with momentum 0.9) or RMSprop, at a fixed rate or a schedule. Keras 3 spells it `learning_rate=`."""
    if name == "sgd":
        return keras.optimizers.SGD(learning_rate=learning_rate, momentum=0.9)
    if name == "rmsprop":
        return keras.optimizers.RMSprop(learning_rate=learning_rate)
    return keras.optimizers.Adam(learning_rate=learning_rate)


def compile_for_task(model, config: TrainConfig, num_classes: int, steps_per_epoch: int | None = None,
                     learning_rate: float | None = None, epochs: int | None = None, example=None):
    """Compile with the loss that matches the head: binary or sparse categorical cross-entropy.

    With `steps_per_epoch`, a one_cycle config gets its learning-rate schedule over the whole run (or over
    `epochs`, for one phase of fine-tuning). `learning_rate` replaces the config's (the second phase's lower rate).
    With `example`, (images, labels) of one training image, the training variables are created now
    (`create_training_variables`).
    """
    _, _, loss = head(num_classes)
    learning_rate = config.learning_rate if learning_rate is None else learning_rate
    if config.lr_schedule == "one_cycle" and steps_per_epoch:
        learning_rate = one_cycle_schedule(steps_per_epoch * (epochs or config.epochs), learning_rate)
    model.compile(
        optimizer=make_optimizer(config.optimizer, learning_rate),
        loss=loss,
        metrics=["accuracy"],
        steps_per_execution=steps_per_execution(config, steps_per_epoch),
    )
    if example is not None:
        create_training_variables(model, *example)
    return model


def create_training_variables(model, images, labels):
    """Create the optimizer's and the metrics' variables of a compiled model from one example, `images` and `labels`.

    Keras would create them while tracing the first training step, and TensorFlow traces a step that created
    variables a second time: 0.4 s more before the fast DNN's first batches, 0.8 s before the quick CNN's
    (bench/training_variables.py).
    The metrics are reset afterwards, as `fit` does at each epoch; the weights are not touched.
    """
    images, labels = np.asarray(images), np.asarray(labels)
    predictions = model(images, training=False)
    model.compute_loss(images, labels, predictions)
    model.compute_metrics(images, labels, predictions, sample_weight=None)
    model.optimizer.build(model.trainable_variables)
    model.reset_metrics()


def steps_per_execution(config: TrainConfig, steps_per_epoch: int | None = None) -> int:
    """Batches per call into TensorFlow: IMAGES_PER_EXECUTION for a DNN or CNN (at most an epoch), one for transfer."""
    if config.family not in IMAGES_PER_EXECUTION:
        return 1  # a large pretrained base makes each batch slow already; keep Cancel responsive
    steps = max(1, IMAGES_PER_EXECUTION[config.family] // config.batch_size)
    return min(steps, steps_per_epoch) if steps_per_epoch else steps


def one_cycle_rate(step: int, total_steps: int, peak_rate: float) -> float:
    """One-cycle schedule: warm up linearly for 30% of the steps, then cosine down to peak/100."""
    warmup_steps = max(1, int(0.3 * total_steps))
    if step < warmup_steps:
        return peak_rate * (0.1 + 0.9 * step / warmup_steps)
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return peak_rate * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def one_cycle_schedule(total_steps: int, peak_rate: float):
    """`one_cycle_rate` as Keras's built-in CosineDecay with warm-up: computed inside each training step,
    saved with the model and loaded in safe mode."""
    warmup_steps = max(1, int(0.3 * total_steps))
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.1 * peak_rate,
        decay_steps=max(1, total_steps - warmup_steps),
        alpha=0.01,
        warmup_target=peak_rate,
        warmup_steps=warmup_steps,
    )


def train(
    config: TrainConfig,
    dataset=None,
    on_epoch: Callable[[EpochProgress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    base_loader=None,
    root=None,
    on_batch: Callable[[int, int], None] | None = None,
    on_first_batch: Callable[[], None] | None = None,
) -> TrainResult:
    """Build, compile and fit the model that `config` describes; raise TrainingCancelled on request.

    `root` is the registry whose imported datasets `config.dataset` may name. `on_batch(done, total)` hears about the
    first epoch's batches a few times a second, so a page has something to show before the first epoch ends.
    """

    if dataset is None:
        dataset = load_dataset_for(config, root)
    keras.utils.set_random_seed(config.seed)
    model = build_model(config, dataset.input_shape, dataset.num_classes, base_loader=base_loader)
    steps_per_epoch = math.ceil(len(dataset.x_train) / config.batch_size)
    example = dataset.x_train[:1], dataset.y_train[:1]
    compile_for_task(model, config, dataset.num_classes, steps_per_epoch, example=example)

    progress = _ProgressCallback(config.epochs, on_epoch, should_stop, on_batch, on_first_batch)
    callbacks = [progress]
    if config.stop_at_accuracy is not None:
        callbacks.append(_StopAtAccuracy(config.stop_at_accuracy))
    if config.early_stopping_patience is not None:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor="val_loss", patience=config.early_stopping_patience, restore_best_weights=True
            )
        )

    started = time.perf_counter()
    streamed = streams_from_disk(dataset, config)
    fit_in_phases(model, config, dataset.num_classes, steps_per_epoch, progress, example)(
        training_data(dataset, config),
        None if streamed else dataset.y_train,
        batch_size=None if streamed else config.batch_size,
        epochs=config.epochs,
        validation_data=validation_data(dataset, config),
        shuffle=not streamed,  # the tf.data pipeline shuffles itself
        callbacks=callbacks,
        verbose=0,
    )
    if progress.cancelled:
        raise TrainingCancelled(f"Training of '{config.title}' was cancelled after {counted(len(progress.history), 'epoch')}.")
    stopped_reason = next((c.reason for c in callbacks if getattr(c, "reason", None)), None)
    if stopped_reason is None and len(progress.history) < config.epochs:
        stopped_reason = f"early stopping: validation loss stopped improving for {config.early_stopping_patience} epochs"
    return TrainResult(model, progress.history, time.perf_counter() - started, stopped_reason)


def fit_in_phases(model, config: TrainConfig, num_classes: int, steps_per_epoch: int, progress, example=None):
    """`model.fit`, or for two-phase fine-tuning a fit that trains in the standard two phases.

    Phase 1 trains only the new head, with the whole base frozen: a random head's large early gradients
    would otherwise flow into the pretrained layers and wreck what they learned. Phase 2 unfreezes the
    base's top `fine_tune_layers` layers and continues at a learning rate FINE_TUNE_RATE_DIVISOR times
    lower, so they adjust gently. Each history row records its phase; the curves mark where phase 2 starts.
    """
    if not config.fine_tunes_in_two_phases:
        return model.fit

    def fit(*arguments, epochs, **keywords):
        set_fine_tuning(model, 0)
        compile_for_task(model, config, num_classes, steps_per_epoch, epochs=config.head_epochs, example=example)
        progress.phase = 1
        model.fit(*arguments, epochs=config.head_epochs, **keywords)
        if model.stop_training:  # cancelled, or a stop-at-accuracy or early-stopping callback ended training
            return
        set_fine_tuning(model, config.fine_tune_layers)
        compile_for_task(model, config, num_classes, steps_per_epoch, epochs=epochs - config.head_epochs,
                         learning_rate=config.learning_rate / FINE_TUNE_RATE_DIVISOR, example=example)
        progress.phase = 2
        model.fit(*arguments, epochs=epochs, initial_epoch=config.head_epochs, **keywords)

    return fit


def train_and_evaluate(config: TrainConfig, on_epoch=None, should_stop=None, base_loader=None, root=None,
                       on_batch=None, on_first_batch=None) -> TrainedModel:
    """Load the data `config` names (an imported dataset from the registry at `root`), train on it, and evaluate on
    its test split; the card describes it all."""
    dataset = load_dataset_for(config, root)
    result = train(config, dataset, on_epoch=on_epoch, should_stop=should_stop, base_loader=base_loader,
                   on_batch=on_batch, on_first_batch=on_first_batch)
    started = time.perf_counter()
    evaluation = evaluate(result.model, dataset.x_test, dataset.y_test, dataset.class_names,
                          batch_size=evaluation_batch_size(dataset.input_shape))
    card = trained_card(config, dataset, result.model, result.history, result.seconds, result.stopped_reason, evaluation,
                        eval_seconds=time.perf_counter() - started)
    return TrainedModel(result.model, result.history, evaluation, card, first_view_of(result.model, dataset))


def first_view_of(model, dataset) -> bytes | None:
    """Inside the network's first view of a trained model, as the bytes of its file (core.network_view); None, logged,
    if it cannot be made: the page then computes it from the model, so a training is never lost to it."""
    try:
        return first_view_bytes(compute_first_view(model, dataset.x_test, dataset.y_test, len(dataset.class_names)))
    except Exception as error:
        logger.warning("the first view of %s was not computed: %s", model.name, error)
        return None


def warm_up():
    """Fit, evaluate and predict with a tiny batch-norm CNN on 64 blank images: TensorFlow's and Keras's first-use
    costs (kernels, graph optimiser, the training loop) are paid here, once per process, not by a student's job."""
    config = TrainConfig(family="cnn", filters=(4,), padding="same", batch_norm=True, hidden_units=(8,), batch_size=32,
                         lr_schedule="one_cycle", epochs=1)
    images, labels = np.zeros((64, 28, 28, 1), np.uint8), np.zeros(64, np.int64)
    model = build_model(config, images.shape[1:], 10)
    compile_for_task(model, config, 10, steps_per_epoch=2, example=(images[:1], labels[:1]))
    model.fit(images, labels, batch_size=32, epochs=1, validation_data=(images, labels), verbose=0)
    model.predict(images, batch_size=32, verbose=0)
    keras.backend.clear_session()


def evaluation_batch_size(input_shape) -> int:
    """Test images per prediction batch: 256 small images, fewer large ones (the activations of a batch grow with its
    pixels: 256 photos at 150x150 held 0.7 GB in the first convolution alone)."""
    height, width = input_shape[:2]
    return max(8, min(EVALUATION_BATCH, EVALUATION_PIXELS_PER_BATCH // (height * width)))


def load_dataset_for(config: TrainConfig, root=None):
    """Load exactly the data slice that `config` asks for (an imported dataset from the registry at `root`).

    An imported dataset too small to give every split a photo is refused here, before it is decoded or trained on.
    """
    check_trainable(root, config.dataset, config.validation_fraction)
    return load_dataset(
        config.dataset,
        train_subset=config.train_subset,
        image_size=config.image_size,
        color_mode=config.color_mode,
        validation_fraction=config.validation_fraction,
        root=root,
    )


class _ProgressCallback(keras.callbacks.Callback):
    """Reports the first batch, the first epoch's batches and each epoch, and checks for Cancel a few times a second."""

    def __init__(self, epochs, on_epoch, should_stop, on_batch=None, on_first_batch=None):
        super().__init__()
        self.epochs, self.on_epoch, self.should_stop = epochs, on_epoch, should_stop
        self.on_batch, self.on_first_batch = on_batch, on_first_batch
        self.history, self.cancelled, self.phase = [], False, None
        self._epoch_started = self._last_check = self._last_batch_report = time.perf_counter()

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_started = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        if self.on_first_batch:
            self.on_first_batch()
            self.on_first_batch = None
        now = time.perf_counter()
        if self.on_batch and not self.history and now - self._last_batch_report >= BATCH_REPORT_SECONDS:
            self._last_batch_report = now
            steps = int(self.params.get("steps") or 0)
            # With several steps per execution Keras names the chunk's last step, past the epoch's end in its last chunk
            self.on_batch(min(batch + 1, steps) if steps else batch + 1, steps)
        if self.should_stop and now - self._last_check >= CANCEL_CHECK_SECONDS:
            self._last_check = now
            if self.should_stop():
                self.cancelled = True
                self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        if self.cancelled:
            return
        logs = logs or {}
        seconds = time.perf_counter() - self._epoch_started
        mean_seconds = (sum(h["seconds"] for h in self.history) + seconds) / (epoch + 1)
        progress = EpochProgress(
            epoch=epoch + 1,
            epochs=self.epochs,
            loss=float(logs.get("loss", float("nan"))),
            accuracy=float(logs.get("accuracy", float("nan"))),
            val_loss=float(logs.get("val_loss", float("nan"))),
            val_accuracy=float(logs.get("val_accuracy", float("nan"))),
            seconds=seconds,
            eta_seconds=mean_seconds * (self.epochs - epoch - 1),
            phase=self.phase,
        )
        self.history.append(progress.to_dict())
        if self.on_epoch:
            self.on_epoch(progress)


class _StopAtAccuracy(keras.callbacks.Callback):
    """The classic course callback: stop once training accuracy reaches a target."""

    def __init__(self, target):
        super().__init__()
        self.target, self.reason = target, None

    def on_epoch_end(self, epoch, logs=None):
        accuracy = (logs or {}).get("accuracy")
        if accuracy is not None and accuracy >= self.target:
            self.reason = f"reached {accuracy:.1%} training accuracy (target {self.target:.0%}) after {epoch + 1} epochs"
            self.model.stop_training = True
