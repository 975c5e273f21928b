"""What a page's address says about its model picker (core.ui.model_picker), without Streamlit.

The address names a model the student picked (`?inside_model=<registry key>`), and none while the lesson's own model
is shown. A link or a reload opens the model it names; the browser's Back and Forward buttons change the address
under the page, which then shows the model of that address.

Two limits, both of Streamlit's history: coming back to a page through the sidebar gives an address without the model,
and the page then writes the student's pick into it, a second history entry, so the first Back shows the same model;
and an address without a model stands for one model per visit, the last it stood for.
"""

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class PickerAddress:
    """What a picker's last run wrote in the address, in which visit of its page (core.ui counts them)."""

    visit: int | None = None
    written: str | None = None  # the model written there; None when the lesson's own was shown
    blank: str | None = None  # the model an address without one stands for in that visit

    def model_to_show(self, address: str | None, visit: int | None) -> str | None:
        """The model the address has the page show (the one it names, or the one a bare address stands for), or None
        to keep the student's pick (the picker's own memory)."""
        entered = visit != self.visit
        if address and (entered or address != self.written):  # a link, a reload, Back or Forward to a pick
            return address
        if not address and not entered and self.written:  # Back or Forward to before a pick
            return self.blank
        return None

    def followed(self, address: str | None, visit: int | None) -> "PickerAddress":
        """The address followed (`model_to_show`), as if written: a run cut short after it does not follow it again."""
        return replace(self, visit=visit, written=address or None)

    def after(self, chosen: str, lesson_model: str, address: str | None, visit: int | None) -> "PickerAddress":
        """What the run leaves once `chosen` is shown and written (`lesson_model`: removed from the address)."""
        entered = visit != self.visit
        if chosen == lesson_model or (entered and address):
            blank = lesson_model
        elif entered:  # come back to the page, whose address names no model: it stands for the pick kept from before
            blank = chosen
        else:
            blank = self.blank or lesson_model
        return PickerAddress(visit, None if chosen == lesson_model else chosen, blank)
