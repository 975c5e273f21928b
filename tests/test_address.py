"""What a page's address says about its model picker (core.address): each path a student takes through the browser's
history, played as the runs of the page would play it. LESSON is the lesson's own model, PICK another."""

from core.address import PickerAddress

LESSON, PICK, OTHER = "a" * 16, "b" * 16, "c" * 16
UNCHANGED = object()  # a run with the address as the page last wrote it


class Page:
    """A page's picker over its runs: the student's pick kept in the session, the address the page writes."""

    def __init__(self, kept: str | None = None):
        self.last, self.visit, self.kept, self.address = PickerAddress(), 0, kept, None

    def enter(self, address: str | None = None) -> str:
        """Come to the page from another (the sidebar, a link, a reload) with `address` naming a model or none."""
        self.visit += 1
        return self.run(address)

    def run(self, address: str | None) -> str:
        """One run of the page with `address` in the browser: returns the model shown, and writes the address."""
        shown = self.last.model_to_show(address, self.visit) or self.kept or LESSON
        self.pick(shown, address)
        return shown

    def pick(self, model: str, address: str | None | object = UNCHANGED) -> str:
        """The student picks `model` (a run with the address as the page last left it)."""
        address = self.address if address is UNCHANGED else address
        self.last = self.last.after(model, LESSON, address, self.visit)
        self.kept, self.address = model, None if model == LESSON else model
        return self.address


def test_a_link_or_a_reload_opens_the_model_its_address_names():
    assert Page().enter(PICK) == PICK
    assert Page(kept=OTHER).enter(PICK) == PICK  # the address wins over a pick kept in the session
    assert Page().enter(None) == LESSON


def test_back_and_forward_step_between_the_models_picked():
    page = Page()
    assert page.enter(None) == LESSON
    assert page.pick(PICK) == PICK  # the address names it
    assert page.pick(OTHER) == OTHER
    assert page.run(PICK) == PICK  # Back
    assert page.run(None) == LESSON  # Back again: the lesson's model, before any pick
    assert page.address is None
    assert page.run(PICK) == PICK  # Forward
    assert page.run(OTHER) == OTHER  # Forward again


def test_picking_the_lessons_model_again_takes_it_out_of_the_address_and_back_returns_to_the_pick():
    page = Page()
    page.enter(PICK)
    assert page.pick(LESSON) is None
    assert page.run(PICK) == PICK  # Back


def test_a_page_come_back_to_through_the_sidebar_keeps_the_pick_and_its_bare_address_stands_for_it():
    page = Page()
    page.enter(None)
    page.pick(PICK)
    assert page.enter(None) == PICK  # the sidebar's link has no model in it: the pick kept in the session
    assert page.address == PICK  # and the page writes it
    assert page.run(None) == PICK  # Back to the sidebar's bare address: the same model, not the lesson's
    assert page.pick(LESSON) is None
    assert page.run(PICK) == PICK  # Back
    assert page.run(None) == LESSON  # Forward: the bare address now stands for the lesson's model


def test_a_run_cut_short_after_following_the_address_does_not_follow_it_again():
    page = Page()
    page.enter(None)
    page.pick(PICK)
    page.last = page.last.followed(None, page.visit)  # Back: followed, then the run was cut short by the next click
    page.kept = OTHER  # which picked another model
    assert page.run(None) == OTHER  # not the lesson's model again


def test_a_bare_address_stands_for_one_model_a_visit_the_last_it_stood_for():
    """The limit the module states: the sidebar's bare entry, after the lesson's model was picked, stands for it."""
    page = Page()
    page.enter(None)
    page.pick(PICK)
    page.enter(None)  # through the sidebar: the bare address stands for PICK
    page.pick(LESSON)  # now it stands for the lesson's model
    page.pick(OTHER)
    assert page.run(None) == LESSON  # Back and Back again reach the sidebar's entry: the lesson's model, not PICK


def test_a_run_with_the_address_as_the_page_left_it_changes_nothing():
    page = Page()
    page.enter(None)
    page.pick(PICK)
    for _ in range(3):  # a slider moved, a rerun: the address is the one the page wrote
        assert page.run(PICK) == PICK
    page.kept = OTHER  # the page itself chose another (Transfer: its base just trained); the address still names PICK
    assert page.run(PICK) == OTHER
