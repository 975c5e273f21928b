"""Teacher and students: the gate's salted hash, its rate limit, and the teacher's actions refused to students."""

import dataclasses

import pytest
from conftest import TINY_CNN, TINY_DNN

from core import teacher
from core.errors import EntryNotFoundError, PermissionDenied, RegistryError
from core.jobs import Budget, JobQueue
from core.teacher import TeacherGate, TooManyAttempts, WrongPassphrase

PASSPHRASE = "owls-at-dusk-42"


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture
def clock(monkeypatch):
    fake = Clock()
    monkeypatch.setattr(teacher.time, "monotonic", fake)
    return fake


def test_the_gate_keeps_only_a_salted_hash():
    first, second = TeacherGate.from_passphrase(PASSPHRASE), TeacherGate.from_passphrase(PASSPHRASE)
    assert not first.is_open
    assert first.salt != second.salt and first.digest != second.digest  # salted: the same passphrase hashes apart
    assert PASSPHRASE.encode() not in repr(vars(first)).encode() and PASSPHRASE not in repr(first)


def test_without_a_passphrase_everything_stays_open(own_trained_registry):
    gate = TeacherGate.from_passphrase(None)
    assert gate.is_open and gate.allows(None)
    teacher.pin_model(own_trained_registry, gate, None, TINY_DNN.key)
    teacher.pin_model(own_trained_registry, gate, None, TINY_DNN.key, pinned=False)
    teacher.delete_model(own_trained_registry, gate, None, TINY_DNN.key)
    assert not own_trained_registry.has(TINY_DNN.key)


def test_a_student_cannot_delete_import_pin_or_set_the_budget(own_trained_registry, tmp_path):
    registry, gate = own_trained_registry, TeacherGate.from_passphrase(PASSPHRASE)
    model_file = registry.export(TINY_CNN.key, "keras", tmp_path)
    before = sorted(path.name for path in registry.models_dir.iterdir())
    with pytest.raises(PermissionDenied, match="Only the teacher can delete models"):
        teacher.delete_model(registry, gate, None, TINY_DNN.key)
    with pytest.raises(PermissionDenied, match="import models"):
        teacher.import_model(registry, gate, None, model_file)
    with pytest.raises(PermissionDenied, match="pin"):
        teacher.pin_model(registry, gate, None, TINY_DNN.key)
    with pytest.raises(PermissionDenied, match="budget"):
        teacher.set_budget(JobQueue(registry.root), gate, None, Budget(max_epochs=1))
    forged = teacher.TeacherPass("a-token-the-gate-never-issued")
    with pytest.raises(PermissionDenied):
        teacher.delete_model(registry, gate, forged, TINY_DNN.key)
    assert sorted(path.name for path in registry.models_dir.iterdir()) == before
    assert JobQueue(registry.root).budget() == Budget()


def test_the_teacher_pins_a_lesson_model_which_then_cannot_be_deleted(own_trained_registry):
    registry, gate = own_trained_registry, TeacherGate.from_passphrase(PASSPHRASE)
    teacher_pass = gate.unlock(PASSPHRASE, "teacher-laptop")
    teacher.pin_model(registry, gate, teacher_pass, TINY_CNN.key)
    assert registry.pinned_keys() == {TINY_CNN.key}
    with pytest.raises(RegistryError, match="pinned for a lesson"):
        teacher.delete_model(registry, gate, teacher_pass, TINY_CNN.key)
    with pytest.raises(RegistryError, match="pinned"):
        registry.delete(TINY_CNN.key)  # the CLI's path: the store itself refuses
    assert registry.has(TINY_CNN.key)
    assert TINY_CNN.key in {card.key for card in registry.list_entries()}  # a pin survives a reindex
    registry.reindex()
    assert registry.is_pinned(TINY_CNN.key)
    teacher.pin_model(registry, gate, teacher_pass, TINY_CNN.key, pinned=False)
    teacher.delete_model(registry, gate, teacher_pass, TINY_CNN.key)
    assert not registry.has(TINY_CNN.key)
    gate.lock_again(teacher_pass)
    with pytest.raises(PermissionDenied):
        teacher.delete_model(registry, gate, teacher_pass, TINY_DNN.key)


def test_wrong_passphrases_are_refused_and_rate_limited(clock):
    gate = TeacherGate.from_passphrase(PASSPHRASE)
    for attempt in range(1, teacher.FREE_ATTEMPTS + 1):
        with pytest.raises(WrongPassphrase, match="not the teacher's passphrase") as refused:
            gate.unlock("owls-at-noon", "student-7")
        warned = "The next try waits 2 s, and each wrong one after doubles the wait." in str(refused.value)
        assert warned == (attempt == teacher.FREE_ATTEMPTS)  # the wrong guess that starts the waits says so
    with pytest.raises(TooManyAttempts, match="Wait 2 s"):
        gate.unlock(PASSPHRASE, "student-7")  # even the right one, until the wait is over
    clock.now += 1.9
    with pytest.raises(TooManyAttempts, match="Wait 1 s"):  # what is left, rounded up: never "Wait 0 s"
        gate.unlock(PASSPHRASE, "student-7")
    clock.now -= 1.9
    assert gate.unlock(PASSPHRASE, "teacher-laptop").token  # another browser is not locked out
    clock.now += 2.5
    with pytest.raises(WrongPassphrase):
        gate.unlock("owls-at-dawn", "student-7")
    with pytest.raises(TooManyAttempts, match="Wait 4 s"):  # the wait doubles with each wrong guess
        gate.unlock("owls-at-dusk", "student-7")
    clock.now += 4.5
    assert gate.allows(gate.unlock(PASSPHRASE, "student-7"))


def test_new_browser_tabs_do_not_buy_more_guesses(clock):
    gate = TeacherGate.from_passphrase(PASSPHRASE)
    for tab in range(teacher.SERVER_WRONG_ATTEMPTS_PER_MINUTE):
        with pytest.raises(WrongPassphrase):
            gate.unlock(f"guess-{tab}", f"tab-{tab}")
    with pytest.raises(TooManyAttempts, match="on this server"):
        gate.unlock("guess-again", "a-new-tab")
    clock.now += 61
    with pytest.raises(WrongPassphrase):
        gate.unlock("guess-again", "a-new-tab")


def test_a_teacher_budget_is_kept_in_the_queue(registry_root):
    gate = TeacherGate.from_passphrase(PASSPHRASE)
    queue = JobQueue(registry_root)
    teacher.set_budget(queue, gate, gate.unlock(PASSPHRASE, "teacher"), Budget(max_epochs=8, max_seconds=120))
    assert JobQueue(registry_root).budget() == Budget(8, 120)
    Budget(8, 120).check(dataclasses.replace(TINY_DNN, epochs=8))


def test_a_deleted_model_waits_in_the_trash_and_only_the_teacher_restores_it(own_trained_registry):
    from datetime import timedelta

    from core import trash

    registry, gate = own_trained_registry, TeacherGate.from_passphrase(PASSPHRASE)
    teacher_pass = gate.unlock(PASSPHRASE, "teacher-laptop")
    title = registry.get(TINY_DNN.key).title
    item = teacher.delete_model(registry, gate, teacher_pass, TINY_DNN.key)
    assert not registry.has(TINY_DNN.key) and TINY_DNN.key not in {card.key for card in registry.list_entries()}
    assert [(found.key, found.title) for found in trash.list_trash(registry.root)] == [(TINY_DNN.key, title)]
    assert item.restorable_until - item.deleted_at == timedelta(days=trash.KEEP_DAYS)
    with pytest.raises(PermissionDenied, match="Only the teacher can restore deleted models"):
        teacher.restore_model(registry, gate, None, TINY_DNN.key)
    assert teacher.restore_model(registry, gate, teacher_pass, TINY_DNN.key).title == title
    assert TINY_DNN.key in {card.key for card in registry.list_entries()} and registry.load_evaluation(TINY_DNN.key)
    with pytest.raises(EntryNotFoundError, match="No deleted model"):
        registry.restore(TINY_DNN.key)
    registry.delete(TINY_DNN.key)
    assert trash.empty_trash(registry.root, older_than=timedelta(days=trash.KEEP_DAYS)) == []  # a fresh one stays
    assert [found.key for found in trash.empty_trash(registry.root, older_than=timedelta(0))] == [TINY_DNN.key]
    assert trash.list_trash(registry.root) == []
