"""Which model a lesson means, and words a student reads: rankings within a dataset, pickers' defaults, grammar.

Pickers default to the model the lesson is about, never simply the newest: the transfer lesson's base is the CNN
trained on the most data, Predict starts from the most trustworthy model for a photo: the one whose accuracy has the
highest lower end of its 95% (Wilson) interval, so 100% on 30 test images (88.6%) does not outrank 91.7% on 10,000
(91.1%). Home ranks the models of one dataset, tested on the same images, by accuracy (that bound breaks ties).
Imports no numpy and no TensorFlow: Home uses it. Under 470 lines: every sentence the pages build from a model's
figures is here, so one file shows that each says what its numbers allow (guessing, few test images, rankings).
"""

import math
import re
from collections import defaultdict

from core.config import FINE_TUNE_RATE_DIVISOR, dataset_display_name
from core.history import History

Z_95 = 1.96
MAX_FILE_STEM = 80  # characters of a download's name made from a title
ALWAYS_PLURAL = {"scissors", "trousers", "jeans", "glasses", "shorts", "pants", "clothes", "sneakers"}


def accuracy_lower_bound(accuracy: float | None, test_images: int | None) -> float | None:
    """The lower end of the 95% Wilson interval of `accuracy` measured on `test_images` images (None if unknown)."""
    if accuracy is None or not test_images:
        return None
    n, z2 = test_images, Z_95**2
    centre = accuracy + z2 / (2 * n)
    spread = Z_95 * math.sqrt(accuracy * (1 - accuracy) / n + z2 / (4 * n * n))
    return (centre - spread) / (1 + z2 / n)


def trust(card) -> float:
    """How far a card's test accuracy can be trusted to be high: its interval's lower end (-1 when untested)."""
    bound = accuracy_lower_bound(card.test_accuracy, card.dataset.test_images)
    return -1.0 if bound is None else bound


def dataset_title(card) -> str:
    """The readable name of the dataset a model was trained on ('imported models' for a file made elsewhere)."""
    if card.dataset.name is None:
        return "imported models"
    return card.dataset.title or dataset_display_name(card.dataset.name)


def best_by_dataset(cards, per_dataset: int = 3) -> dict[str, list]:
    """The best tested models of each dataset, best first, by the dataset's title; datasets with the largest test sets
    first. Datasets are told apart by name, not title: two imports titled alike are ranked apart, "title (2)"."""
    groups = defaultdict(list)
    for card in cards:
        if card.test_accuracy is not None:
            groups[card.dataset.name or dataset_title(card)].append(card)
    ranked = sorted((sorted(group, key=lambda card: (card.test_accuracy, trust(card)), reverse=True)[:per_dataset]
                     for group in groups.values()), key=lambda group: -(group[0].dataset.test_images or 0))
    titled = {}
    for group in ranked:
        title, number = dataset_title(group[0]), 1
        while (f"{title} ({number})" if number > 1 else title) in titled:
            number += 1
        titled[f"{title} ({number})" if number > 1 else title] = group
    return titled


def balance_note(class_names, train_counts, test_counts) -> str:
    """Whether the classes are balanced, from the training counts, and the score of always answering the most common
    class on the test images: the accuracy any model must beat."""
    train_counts, test_counts = [int(count) for count in train_counts], [int(count) for count in test_counts]
    most, fewest = max(train_counts), min(train_counts)
    common = test_counts.index(max(test_counts))
    baseline = f"always answering {class_names[common]} scores {max(test_counts) / max(sum(test_counts), 1):.0%} on the test images"
    if most <= 1.2 * fewest:
        each = f"{most:,}" if most == fewest else f"{fewest:,} to {most:,}"
        return (f"The classes are balanced ({each} training images each), so accuracy is a fair score: "
                f"{baseline}, and a model cannot do well by always guessing one class.")
    largest, smallest = class_names[train_counts.index(most)], class_names[train_counts.index(fewest)]
    return (f"The classes are not balanced: {largest} has {most:,} training images, {smallest} {fewest:,}. "
            f"{baseline[0].upper()}{baseline[1:]}: a model must beat that, and its accuracy per class (Compare) says which "
            "classes it neglects.")


def one_mistake_note(best: dict[str, list]) -> str:
    """What one test image more or less right moves an accuracy by, for the smallest and largest test sets ranked:
    "one mistake moves an accuracy by 2.5 points on 40 test images, by 0.01 on 10,000"."""
    sizes = sorted({card.dataset.test_images for ranked in best.values() for card in ranked if card.dataset.test_images})
    if not sizes:
        return ""
    steps = [f"{100 / sizes[0]:.2g} points on {sizes[0]:,} test images"]
    if sizes[-1] != sizes[0]:
        steps.append(f"{100 / sizes[-1]:.2g} on {sizes[-1]:,}")
    return "one mistake moves an accuracy by " + ", by ".join(steps)


def default_base_key(cards, named_base) -> str | None:
    """The transfer lesson's base: `named_base` (the full-data CNN the page names) when trained, else the CNN trained
    on the most images of that dataset, without augmentation, then the most accurate — never merely the newest."""
    keys = [card.key for card in cards]
    if named_base.key in keys:
        return named_base.key
    candidates = [card for card in cards if card.config is not None and card.config.family == "cnn"]
    if not candidates:
        return None

    def lesson_fit(card):
        return (card.dataset.name == named_base.dataset, card.dataset.train_images or 0,
                not card.config.augmentation.is_active, trust(card))

    return max(candidates, key=lesson_fit).key


def default_compare_keys(cards, pair_keys: list[str]) -> list[str]:
    """Side by side's first models: the one-click pair (`pair_keys`) once both are tested. Until then (one of them may
    be tested, the other still training) the most like-for-like pair tested on the same test images (same dataset,
    same count), never two that McNemar's test cannot pair: one alone would only ask for another. Like for like, in
    order: both learned something (two at chance opened the page on a "winner" made by chance), both learned from as
    many images (a dense network on 3,000 against a CNN on 500 taught that dense beats CNN), a dense network against
    a CNN (the lesson), then the newest. A, the reference, is the dense network of such a pair, as in the one-click
    pair; else the older."""
    tested = [card for card in cards if card.test_accuracy is not None]
    if pair_keys and set(pair_keys) <= {card.key for card in tested}:
        return list(pair_keys)
    guessing = {card.key: no_better_than_guessing(card) for card in tested}
    pairs = [(older, newer) for position, newer in enumerate(tested) for older in tested[position + 1:]  # newest first
             if older.dataset.name == newer.dataset.name and older.dataset.test_images == newer.dataset.test_images]
    if not pairs:
        tested.sort(key=lambda card: guessing[card.key])  # stable: the newest that learned, else the newest
        return [card.key for card in tested[:1]]

    def unlikeness(pair) -> tuple:
        older, newer = pair
        return (guessing[older.key] + guessing[newer.key], older.dataset.train_images != newer.dataset.train_images,
                {older.family, newer.family} != {"dnn", "cnn"})

    older, newer = min(pairs, key=unlikeness)  # min keeps the first of equals: the newest
    if (older.family, newer.family) == ("cnn", "dnn"):  # the dense network is A, as in the one-click pair
        older, newer = newer, older
    return [older.key, newer.key]


def predict_order(cards) -> list:
    """Predict's picker, best first: the most trustworthy models trained on photos (an imported folder dataset),
    since people bring photos; then the most trustworthy of the rest; then untested (imported) models. Tested models
    no better than guessing come last of all: their sure-looking answers would teach nonsense."""
    return sorted(cards, key=lambda card: (not no_better_than_guessing(card), is_photo_model(card), trust(card)),
                  reverse=True)


def no_better_than_guessing(card) -> bool:
    """True when a tested model's accuracy cannot be told from guessing one of its classes at random: the lower end
    of its 95% interval is at or below 1 / classes (50% for two). False when untested."""
    bound = accuracy_lower_bound(card.test_accuracy, card.dataset.test_images)
    return bound is not None and bound <= 1 / max(2, len(card.class_names))


def experiment_guessing_note(cards: dict) -> str | None:
    """What to say where an experiment's models ({name: card}) include one no better than guessing: its difference
    from the others teaches nothing yet. None when every one learned something."""
    guessing = [name for name, card in cards.items() if no_better_than_guessing(card)]
    if not guessing:
        return None
    card = cards[guessing[0]]
    classes = max(2, len(card.class_names))
    everyone = len(guessing) == len(cards)
    if everyone:
        which = "Neither model can" if len(cards) == 2 else f"None of the {len(cards)} models can"
    else:
        which = f"The {' and '.join(f'*{name}*' for name in guessing)} model{'s' if len(guessing) > 1 else ''} cannot"
    return (f"{which} yet be told apart from guessing one of the {classes} classes at random ({1 / classes:.0%}) on "
            f"these {card.dataset.test_images:,} test images, so "
            + ("this comparison teaches nothing yet: whatever differs is chance." if everyone else
               "this comparison shows only that it needs more training to learn anything, not how well it would "
               "do.") + " Train on more images or for more epochs first.")


def guessing_note(card) -> str | None:
    """What to say of a model no better than guessing (`no_better_than_guessing`), with its numbers; else None."""
    if not no_better_than_guessing(card):
        return None
    classes = max(2, len(card.class_names))
    return (f"This model is right on {accuracy_text(card.test_accuracy, card.dataset.test_images)} of its "
            f"{card.dataset.test_images:,} test images, which guessing one of its {classes} classes at random "
            f"({1 / classes:.0%}) could score too: it cannot yet be told apart from guessing, however sure its "
            "answers look. More photos per class, more epochs or a pretrained base (Transfer learning) help.")


def is_photo_model(card) -> bool:
    """True for a model trained on imported photos (a folder dataset), which people's own photos can resemble."""
    return (card.dataset.name or "").startswith("folder:")


def ready_summary(cards, datasets, courses, active_jobs: int) -> str:
    """Home's "Ready to use" in a few lines of Markdown: models (trained here or imported), the datasets on this
    machine, the course's photo datasets imported, and the trainings under way. Details live on Datasets and Models."""
    trained = sum(1 for card in cards if not card.imported)
    here = [info.title for info in datasets if info.on_this_machine]
    imported = [course.title for course in courses if course.imported_as]
    lines = [f"**{counted(len(cards), 'model')}** ready ({trained} trained here, {len(cards) - trained} imported).",
             f"**{len(here)} of {counted(len(datasets), 'dataset')}** on this machine"
             + (f": {', '.join(here)}." if here else "."),
             f"**{len(imported)} of {len(courses)}** course photo datasets imported"
             + (f": {', '.join(imported)}." if imported else ".")]
    if active_jobs:
        lines.append(f"{counted(active_jobs, 'training')} running or queued right now.")
    return "\n\n".join(lines)


def skipped_summary(skipped: list[tuple[str, str]], shown: int = 3) -> str:
    """Why files were skipped, most common reason first, each with up to two of its files: an import that found no
    photo said only "Skipped 11 files" ('Skipped 11 files — not an image file: 11 (notes.txt, scan.pdf, …).')."""
    reasons = defaultdict(list)
    for path, reason in skipped:
        reasons[re.split(r"[:;]", reason)[0]].append(path.rsplit("/", 1)[-1])
    parts = [f"{reason}: {len(files)} ({', '.join(files[:2])}{', …' if len(files) > 2 else ''})"
             for reason, files in sorted(reasons.items(), key=lambda item: -len(item[1]))[:shown]]
    more = f", and {len(reasons) - shown} other reasons" if len(reasons) > shown else ""
    return f"Skipped {counted(len(skipped), 'file')}" + (f" — {'; '.join(parts)}{more}." if parts else ".")


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """'1 model', '3 models', '0 models' ('1 entry', '2 entries' with its `plural`)."""
    return f"{count:,} {noun if count == 1 else plural or noun + 's'}"


def percent_sure(probability: float, decimals: int = 0) -> str:
    """A probability as a percentage that never rounds to a certainty the model does not have: 0.9996 → ">99%",
    0.0004 → "<1%" (with decimals=1: ">99.9%", "<0.1%"). A float32 softmax can even return exactly 1.0: still ">99%"."""
    unit = 10.0 ** -decimals  # the smallest step shown, in percent
    percent = 100 * float(probability)
    if percent >= 100 - unit / 2:
        return f">{100 - unit:.{decimals}f}%"
    if percent < unit / 2:
        return f"<{unit:.{decimals}f}%"
    return f"{percent:.{decimals}f}%"


def duration_words(seconds: float) -> str:
    """A wait as a person says it: '40 s', '3 min' (whole minutes from 90 s on)."""
    return f"{max(1, round(seconds))} s" if seconds < 90 else f"{round(seconds / 60)} min"


def points_between(before: float, after: float, decimals: int = 1) -> float:
    """after − before in percentage points, as the two percentages read written with `decimals`: 23.8% after 22.7% is
    +1.1 whatever digits follow (rounding the fractions first gave +1.0 for 285 and 272 of 1,200)."""
    return round(float(f"{after * 100:.{decimals}f}") - float(f"{before * 100:.{decimals}f}"), decimals)


def signed(value: float, spec: str = "+.1f") -> str:
    """A number as a sentence writes it: with its sign, and a true minus (−2.6), never a hyphen (-2.6)."""
    text = format(value, spec)
    if float(text) == 0:  # -0.00001 at four decimals: 0, without a minus ("−0.0000" read as a loss)
        text = format(0.0, spec)
    return text.replace("-", "−")


def term(value: float, decimals: int = 4) -> str:
    """The second term of a sum as an equation writes it: '+ 1.0000' or '− 1.0000' (y = 2.0000x − 1.0000)."""
    return f"{'−' if value < 0 else '+'} {abs(value):.{decimals}f}"


def percent(fraction: float, decimals: int = 0) -> str:
    """A measured fraction (an accuracy, a share) as a percentage that reads 100% or 0% only when it is exactly that:
    0.997 → ">99%" (`percent_sure` for a model's probabilities, which are never exactly certain)."""
    return f"{fraction:.{decimals}%}" if fraction in (0, 1) else percent_sure(fraction, decimals)


def cnn_not_ahead_note(dense, convolutional, comparison) -> str | None:
    """Why the one-click pair's CNN is not shown better than the dense network, when it is not (fewer right, or
    McNemar p >= 0.05), from the two models' own numbers: few training images make few weight updates. None when the
    CNN is ahead. `dense` and `convolutional` are registry entries (card and history); `comparison` is dense vs CNN.

    On Fashion-MNIST's classic pair, 2,000 training images left the two level (78.7-80.4 %), 5,000 put the CNN 1.4-2.0
    points ahead and 10,000 2.3-3.4 (two seeds each; a teaching-claims test trains the pair on 5,000)."""
    from core.course import steps_per_epoch  # here: the home page imports this module, and needs no course plan

    if comparison.difference < 0 and comparison.p_value < 0.05:
        return None
    card = convolutional.card
    images, epochs = card.dataset.train_images, card.epochs_run
    if not images or not epochs or not card.config or not convolutional.history or not dense.history:
        return None
    updates = steps_per_epoch(images, card.config.batch_size) * epochs
    return (f"Here the CNN is not ahead. Trained on {images:,} images for {counted(epochs, 'epoch')}, it made "
            f"{updates:,} weight updates and gets {convolutional.history[-1]['accuracy']:.0%} of its own training "
            f"images right (the dense network: {dense.history[-1]['accuracy']:.0%}). A CNN's filters must be learned "
            "before they pay off, and that takes examples: train the pair on more images (**Training images** above) "
            "and compare again.")


def classes_note(card) -> str:
    """What a model can answer, in a student's words: it always names one of its classes, whatever the photo shows."""
    names = card.class_names
    listed = ", ".join(names[:-1]) + f" or {names[-1]}" if len(names) > 1 else names[0]
    where = f" from {dataset_title(card)}" if card.dataset.name else ""
    return (f"This model knows only {len(names)} classes{where}: {listed}. Whatever your photo shows, it answers with "
            "one of them — a photo of something none of them covers still gets one of these names, so pick a model "
            "trained on photos like yours.")


def singular(class_name: str) -> str:
    """'humans' -> 'human', 'boxes' -> 'box', 'daisies' -> 'daisy'; 'scissors', 'Trouser' and 'glass' stay."""
    word = class_name.strip()
    if word.lower() in ALWAYS_PLURAL or not word.lower().endswith("s") or word.lower().endswith(("ss", "us", "is")):
        return word
    if word.lower().endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.lower().endswith(("ches", "shes", "xes", "sses")):
        return word[:-2]
    return word[:-1]


def article(word: str) -> str:
    """'a' or 'an' before `word` ('an Ankle boot', 'a T-shirt/top', 'an 8')."""
    first = word.strip()[:1].lower()
    return "an" if first in "aeio8" or word.strip().lower().startswith(("hour", "honest")) else "a"


def with_article(class_name: str) -> str:
    """A class name as a noun phrase: 'an Ankle boot', 'a human', 'scissors'."""
    word = singular(class_name)
    return word if word.lower() in ALWAYS_PLURAL else f"{article(word)} {word}"


def safe_file_name(title: str, suffix: str) -> str:
    """A download's file name made from a title: 'cnn-32-64-dense-128-on-fashion-mnist-5-epochs.keras'."""
    stem = re.sub(r"[^a-z0-9]+", "-", title.lower().replace("×", "x").replace("%", "pct")).strip("-")
    if len(stem) > MAX_FILE_STEM:  # cut between words ("…-rate-0-01", not "…-rate-0-01-o")
        cut = stem[:MAX_FILE_STEM + 1]
        stem = cut.rsplit("-", 1)[0] if "-" in cut else stem[:MAX_FILE_STEM]
    stem = stem.rstrip("-") or "model"
    return f"{stem}{suffix}"


def pretrained_start_note(config, cards) -> str:
    """Where a transfer model's first weights came from: not a random start (Inside the network says so of the others)."""
    base = next((card for card in cards if card.key == config.registry_base_key), None)
    if config.registry_base_key is None:
        origin = "ImageNet's photos"
    else:
        origin = f"{dataset_title(base)} images ({base.title})" if base else "the images of a CNN since deleted"
    layers = config.fine_tune_layers
    kept = ("they stayed frozen while this model trained (feature extraction)." if not layers else
            f"fine-tuning then let the base's top {layers} layer{'s' if layers != 1 else ''} change, at a "
            f"{FINE_TUNE_RATE_DIVISOR}× lower learning rate.")
    return (f"These weights did not start random: they are the base network's, learned before from {origin}; "
            f"transfer learning starts from them, and {kept}")


def validation_above_training_note(histories: dict[str, History]) -> str | None:
    """Why validation accuracy can read above training accuracy in the first epochs (a beginner reads it as a bug);
    None when no curve shows it."""
    if not any(row["val_accuracy"] > row["accuracy"] for history in histories.values() for row in history[:2]):
        return None
    return ("Validation above training in the first epochs is normal: Keras averages the training accuracy over the "
            "whole epoch, while the network was still learning (and with dropout switching units off, when there is "
            "any); the validation accuracy is measured once, at the epoch's end.")


OVERFITTING_GAP = 0.05  # training accuracy this far above validation accuracy in the last epoch: memorising
FEW_TEST_IMAGES = 100  # below this, one test image moves an accuracy by more than a point


def overfitting_note(history: History) -> str | None:
    """The warning when the last epoch's training accuracy is more than OVERFITTING_GAP above its validation
    accuracy, with both numbers; None otherwise (or without validation)."""
    last = history[-1] if history else {}
    if "val_accuracy" not in last or last["accuracy"] - last["val_accuracy"] <= OVERFITTING_GAP:
        return None
    return (f"In the last epoch training accuracy ({last['accuracy']:.1%}) is "  # the gap of the two as written
            f"{points_between(last['val_accuracy'], last['accuracy']):.1f} points above validation accuracy "
            f"({last['val_accuracy']:.1%}): the network is starting to memorise its training images (overfitting). "
            "Try dropout, augmentation, fewer epochs or early stopping.")


def accuracy_text(accuracy: float, test_images: int | None) -> str:
    """An accuracy with as many decimals as its test images can resolve (one image: 100 / n points): 94% on 16
    photos, 93.8% on 160, 91.24% on 10,000; two decimals when the count is unknown."""
    decimals = max(0, math.ceil(math.log10(test_images)) - 2) if test_images else 2
    return f"{accuracy:.{decimals}%}"


def few_test_images_note(test_images: int | None) -> str | None:
    """How far one mistake moves an accuracy measured on fewer than FEW_TEST_IMAGES images; None for more."""
    if not test_images or test_images >= FEW_TEST_IMAGES:
        return None
    return f"Only {test_images} test images: one mistake moves the accuracy by {100 / test_images:.3g} points."


def training_sizes_note(letters: list[str], cards) -> str | None:
    """Side by side's warning when the models learned from different numbers of images (a CNN on 54,000 against a
    dense network on 1,000 compares the data as much as the networks); None when they all learned from as many."""
    sizes = [card.dataset.train_images for card in cards]
    if None in sizes or len(set(sizes)) == 1 or len({card.dataset.name for card in cards}) > 1:
        return None  # other datasets: other test images, which the page says of each
    listed = ", ".join(f"{letter} from {size:,}" for letter, size in zip(letters, sizes))
    return (f"These models learned from different numbers of training images ({listed}): a difference in accuracy "
            "mixes the network with the amount of data. To compare networks, train them on the same images.")


def title_for(config, registry) -> str:
    """The title `config`'s model has (or will have) in `registry`: an imported dataset and a registry base named by
    their own titles, as the published card names them."""
    from core.catalogue import FOLDER_PREFIX, read_manifest
    from core.errors import CoreError

    dataset = None
    if config.dataset.startswith(FOLDER_PREFIX):
        try:
            dataset = read_manifest(registry.root, config.dataset).title
        except CoreError:
            pass  # a missing dataset: the page or command says so where it checks the dataset
    return config.describe(dataset, registry.base_title(config))


def progress_text(status, epochs: int) -> str:
    """Where a running training is, in words: starting; the first epoch's batches; epochs done and time left; then
    the testing and saving after the last epoch."""
    done = len(status.progress)
    where = f" on {status.placement.split(', process')[0]}" if (status.placement or "").startswith("Ray") else ""
    if not done and not status.first_epoch_batches:
        return f"starting{where}: loading the images and building the network…"
    if not done:
        batch, batches = status.first_epoch_batches
        return f"running{where}, epoch 1 of {epochs}: batch {batch:,} of {batches:,}"
    if done >= epochs:  # the bar is full, and the test images (10,000 of them for Fashion-MNIST) take a while
        return f"{done} of {counted(epochs, 'epoch')} done{where}: testing on its test images and saving the model…"
    left = f" · about {status.eta_seconds:.0f} s left" if (status.eta_seconds or 0) >= 0.5 else ""
    return f"running{where}: {done} of {counted(epochs, 'epoch')} done{left}"


def progress_fraction(status, epochs: int) -> float:
    """How much of a training is done, 0 to 1: the first epoch moves batch by batch."""
    done = len(status.progress)
    if not done and status.first_epoch_batches:
        batch, batches = status.first_epoch_batches
        return min(1.0, batch / batches / epochs)
    return min(1.0, done / epochs)


def queue_text(status) -> str:
    """A waiting student's place in the queue and, once trainings have finished here, about when theirs starts."""
    ahead = status.queue_position or 0
    place = "yours is next" if ahead == 0 else f"{counted(ahead, 'training')} ahead of yours"
    if status.starts_in_seconds is None:
        return f"queued: {place}"
    return f"queued: {place}, starts in about {max(1, round(status.starts_in_seconds))} s"


def entry_label(card) -> str:
    """A model as a picker shows it: title, then test accuracy and on how many test images (the key stays in Models)."""
    if card.test_accuracy is None:
        return f"{card.title} · imported, not tested here · {card.key}"
    return f"{card.title} · {accuracy_text(card.test_accuracy, card.dataset.test_images)} on " \
           f"{card.dataset.test_images or 0:,} test images" \
           + (", no better than guessing" if no_better_than_guessing(card) else "")  # the decimals they resolve
