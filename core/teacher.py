"""Teacher and students: a passphrase unlocks the teacher's actions on a shared server; without one, all is open.

The passphrase comes from $CNNCLASSROOM_TEACHER_PASSPHRASE or Streamlit's secrets (`teacher_passphrase`);
`TeacherGate.from_passphrase` keeps only a salted scrypt hash of it. A session that unlocks gets a
`TeacherPass` (a random token the gate remembers); the teacher's actions call `require_teacher(gate, pass_)`
before they act: delete, import, pin and unpin lesson models, the per-job budget, and restore a deleted model
from the trash. Wrong passphrases are refused and rate-limited, per session and across the server.
"""

import hashlib
import hmac
import math
import os
import secrets
import threading
import time
from dataclasses import dataclass, field

from core.errors import CoreError, PermissionDenied

PASSPHRASE_ENV = "CNNCLASSROOM_TEACHER_PASSPHRASE"
SECRETS_KEY = "teacher_passphrase"
SCRYPT = {"n": 2**14, "r": 8, "p": 1}  # about 30 ms per check here: cheap for a teacher, slow for guessing
FREE_ATTEMPTS = 3  # wrong passphrases a session may try before it has to wait
FIRST_WAIT_SECONDS = 2.0  # then the wait doubles with every further wrong one
LONGEST_WAIT_SECONDS = 300.0
SERVER_WRONG_ATTEMPTS_PER_MINUTE = 30  # across all sessions: new tabs do not buy more guesses


class WrongPassphrase(CoreError):
    """A passphrase that does not match the teacher's."""


class TooManyAttempts(CoreError):
    """Too many wrong passphrases: wait before trying again."""


@dataclass(frozen=True)
class TeacherPass:
    """Proof that a session unlocked teacher mode (a random token the gate issued)."""

    token: str


OPEN_PASS = TeacherPass("")  # what every session holds when no passphrase is configured


@dataclass
class _Attempts:
    wrong: int = 0
    blocked_until: float = 0.0


@dataclass
class TeacherGate:
    """Checks the teacher's passphrase against its salted hash, issues passes, and limits guessing."""

    salt: bytes | None = None
    digest: bytes | None = None
    issued: set = field(default_factory=set)
    attempts: dict = field(default_factory=dict)
    recent_wrong: list = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def from_passphrase(cls, passphrase: str | None) -> "TeacherGate":
        """A gate for `passphrase` (None or empty: no teacher mode, everything open); keeps only a salted hash."""
        if not passphrase:
            return cls()
        salt = secrets.token_bytes(16)
        return cls(salt, _hash(passphrase, salt))

    @property
    def is_open(self) -> bool:
        """True when no passphrase is configured: one person on a laptop, every action allowed."""
        return self.digest is None

    def unlock(self, attempt: str, session: str) -> TeacherPass:
        """A pass for `session` when `attempt` is the passphrase; WrongPassphrase or TooManyAttempts otherwise."""
        if self.is_open:
            return OPEN_PASS
        now = time.monotonic()
        with self.lock:
            record = self.attempts.setdefault(session, _Attempts())
            self.recent_wrong = [moment for moment in self.recent_wrong if now - moment < 60]
            if record.blocked_until > now:
                raise TooManyAttempts(f"Too many wrong passphrases from this browser. Wait "
                                      f"{math.ceil(record.blocked_until - now)} s before trying again.")
            if len(self.recent_wrong) >= SERVER_WRONG_ATTEMPTS_PER_MINUTE:
                raise TooManyAttempts("Too many wrong passphrases on this server in the last minute. Wait a minute "
                                      "before trying again.")
        if hmac.compare_digest(_hash(attempt or "", self.salt), self.digest):
            with self.lock:
                self.attempts.pop(session, None)
                issued = TeacherPass(secrets.token_urlsafe(24))
                self.issued.add(issued.token)
            return issued
        with self.lock:
            record.wrong += 1
            self.recent_wrong.append(now)
            wait = 0
            if record.wrong >= FREE_ATTEMPTS:
                wait = min(LONGEST_WAIT_SECONDS, FIRST_WAIT_SECONDS * 2 ** (record.wrong - FREE_ATTEMPTS))
                record.blocked_until = now + wait
        raise WrongPassphrase("That is not the teacher's passphrase. Students can train, compare and predict without it."
                              + (f" The next try waits {math.ceil(wait)} s, and each wrong one after doubles the wait."
                                 if wait else ""))

    def lock_again(self, teacher_pass: TeacherPass | None):
        """Forget a pass (the teacher pressed Lock)."""
        if teacher_pass is not None:
            with self.lock:
                self.issued.discard(teacher_pass.token)

    def allows(self, teacher_pass: TeacherPass | None) -> bool:
        """True when the holder of `teacher_pass` may take the teacher's actions."""
        return self.is_open or (teacher_pass is not None and teacher_pass.token in self.issued)


def require_teacher(gate: TeacherGate, teacher_pass: TeacherPass | None, action: str):
    """Raise PermissionDenied unless `teacher_pass` unlocks the teacher's actions; `action` says what was refused."""
    if not gate.allows(teacher_pass):
        raise PermissionDenied(f"Only the teacher can {action} on this server. Ask your teacher, or unlock teacher mode "
                               f"with the passphrase in the sidebar.")


def configured_passphrase(secrets_value: str | None = None) -> str | None:
    """The passphrase from $CNNCLASSROOM_TEACHER_PASSPHRASE, else from Streamlit's secrets (passed in), else None."""
    return os.environ.get(PASSPHRASE_ENV) or secrets_value or None


def _hash(passphrase: str, salt: bytes) -> bytes:
    return hashlib.scrypt(passphrase.encode(), salt=salt, **SCRYPT)


# ----- The teacher's actions: each checks the pass, then makes one store call ---------------------------------


def delete_model(registry, gate: TeacherGate, teacher_pass: TeacherPass | None, key: str):
    """Move entry `key` to the trash (refused for students, and for a pinned entry); returns the trash item."""
    require_teacher(gate, teacher_pass, "delete models")
    return registry.delete(key)


def restore_model(registry, gate: TeacherGate, teacher_pass: TeacherPass | None, key: str):
    """Bring a deleted model back from the trash (refused for students: deleting and restoring are the teacher's)."""
    require_teacher(gate, teacher_pass, "restore deleted models")
    return registry.restore(key)


def delete_dataset(registry, gate: TeacherGate, teacher_pass: TeacherPass | None, name: str):
    """Move imported dataset `name` to the trash (refused for students); returns the trash item."""
    from core.folders import delete_dataset as delete

    require_teacher(gate, teacher_pass, "delete datasets")
    return delete(registry.root, name)


def restore_dataset(registry, gate: TeacherGate, teacher_pass: TeacherPass | None, name: str):
    """Bring a deleted imported dataset back from the trash (refused for students)."""
    from core.folders import restore_dataset as restore

    require_teacher(gate, teacher_pass, "restore deleted datasets")
    return restore(registry.root, name)


def import_model(registry, gate: TeacherGate, teacher_pass: TeacherPass | None, path, class_names=None, title=None):
    """Import a .keras file into the registry (refused for students): a `core.exchange.ModelImport`."""
    from core.exchange import import_model_file

    require_teacher(gate, teacher_pass, "import models")
    return import_model_file(registry, path, class_names=class_names, title=title)


def pin_model(registry, gate: TeacherGate, teacher_pass: TeacherPass | None, key: str, pinned: bool = True):
    """Pin entry `key` for a lesson so it cannot be deleted, or unpin it (refused for students)."""
    require_teacher(gate, teacher_pass, "pin or unpin models")
    registry.pin(key, pinned)


def set_budget(queue, gate: TeacherGate, teacher_pass: TeacherPass | None, budget):
    """Set the per-job budget (`core.jobs.Budget`) of every training on this server (refused for students)."""
    require_teacher(gate, teacher_pass, "change the training budget")
    queue.set_budget(budget)
