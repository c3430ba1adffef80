"""Input components that answer every bad value with a message, before any handler runs.

Gradio converts an input value (``preprocess``) before the event's function sees it; a value
it cannot convert — ``"abc"`` or ``""`` in a number box, ``None`` in a slider, JSON ``NaN``, a
choice that is not in the list (a script can send anything) — ends in a bare "Error" with no
text, or in a message that echoes a 100 kB value back. These subclasses check the raw value
themselves and raise :class:`~pages.common.UserError` naming the control, what is allowed and
at most a short prefix of what came in.

They are Gradio "template" components (``is_template = True``, like ``gr.ClearButton``): the
browser draws them exactly as the component they extend; only the server-side check changes.
Use them instead of ``gr.Number`` and friends on every tab.

An empty number box (``None`` or ``""``) reaches the handler as ``None``: the handler decides
what an empty box means (usually the preset's default; see :func:`pages.common.number`).
"""

from __future__ import annotations

import contextlib
import math
from typing import Any

import gradio as gr
import gradio.component_meta

from pages.common import UserError, allowed_range, short

__all__ = ["Checkbox", "CheckboxGroup", "Dropdown", "Number", "Radio", "Slider"]

MAX_CHOICES_LISTED = 8


def _label(component) -> str:
    label = getattr(component, "label", None)
    return str(label) if label else "This value"


def _checked_number(component, payload: Any, integer: bool) -> float:
    """``payload`` as a finite float within the component's bounds, else :class:`UserError`."""
    allowed = allowed_range(component.minimum, component.maximum, integer)
    if isinstance(payload, bool) or not isinstance(payload, int | float | str):
        raise UserError(f"{_label(component)} must be {allowed} (got {short(payload)}).")
    try:
        v = float(payload)
    except (ValueError, OverflowError):
        raise UserError(f"{_label(component)} must be {allowed} (got {short(payload)}).") \
            from None
    lo, hi = component.minimum, component.maximum
    if not math.isfinite(v) or (lo is not None and v < lo) or (hi is not None and v > hi):
        raise UserError(f"{_label(component)} must be {allowed} (got {short(payload)}).")
    if integer and not v.is_integer():
        raise UserError(f"{_label(component)} must be a whole number (got {short(payload)}).")
    return v


def _choices_text(component) -> str:
    names = [str(v) for _, v in component.choices]
    text = ", ".join(names[:MAX_CHOICES_LISTED])
    return text + (", …" if len(names) > MAX_CHOICES_LISTED else "")


def _check_choice(component, value: Any) -> None:
    values = [v for _, v in component.choices]
    try:
        ok = value in values
    except TypeError:  # an unhashable/incomparable value
        ok = False
    if not ok:
        raise UserError(f"{_label(component)}: {short(value)} is not one of the choices "
                        f"({_choices_text(component)}).")


def _one_choice(component, payload: Any) -> Any:
    """``payload`` if it is one of ``component``'s choices, else :class:`UserError`."""
    if payload is None:
        raise UserError(f"{_label(component)}: choose one of {_choices_text(component)}.")
    _check_choice(component, payload)
    return payload


@contextlib.contextmanager
def _no_stub_files():
    """Keep Gradio from writing a ``.pyi`` stub beside this module for each class defined.

    (Gradio's component metaclass does that for every component subclass, meant for custom
    component packages; here it would litter the source tree at import.)
    """
    original = getattr(gradio.component_meta, "create_or_modify_pyi", None)
    if original is None:
        yield
        return
    gradio.component_meta.create_or_modify_pyi = lambda *args, **kwargs: None
    try:
        yield
    finally:
        gradio.component_meta.create_or_modify_pyi = original


# Component classes (a with-block at module level: they are ordinary module attributes).
with _no_stub_files():
    class Number(gr.Number):
        """``gr.Number`` whose bad values get a message; empty → ``None`` (handler's default)."""

        is_template = True

        def preprocess(self, payload):
            if payload is None or (isinstance(payload, str) and not payload.strip()):
                return None
            integer = self.precision == 0
            v = _checked_number(self, payload, integer)
            return int(v) if integer else super().preprocess(v)

    class Slider(gr.Slider):
        """``gr.Slider`` whose bad values (``None``, text, NaN, out of range) get a message."""

        is_template = True

        def preprocess(self, payload):
            integer = self.step is not None and float(self.step).is_integer() \
                and float(self.minimum).is_integer()
            v = _checked_number(self, payload, integer)
            return super().preprocess(int(v) if integer else v)

    class Dropdown(gr.Dropdown):
        """``gr.Dropdown`` (single choice) whose unknown values get a short message."""

        is_template = True

        def preprocess(self, payload):
            if self.multiselect:
                raise TypeError("pages.widgets.inputs.Dropdown is for single choices")
            return super().preprocess(_one_choice(self, payload))

    class Radio(gr.Radio):
        """``gr.Radio`` whose unknown values get a short message."""

        is_template = True

        def preprocess(self, payload):
            return super().preprocess(_one_choice(self, payload))

    class CheckboxGroup(gr.CheckboxGroup):
        """``gr.CheckboxGroup`` that wants a list of known choices (an empty list is allowed)."""

        is_template = True

        def preprocess(self, payload):
            if payload is None:
                payload = []
            if not isinstance(payload, list):
                raise UserError(f"{_label(self)} must be a list of choices from "
                                f"{_choices_text(self)} (got {short(payload)}).")
            for value in payload:
                _check_choice(self, value)
            return super().preprocess(payload)

    class Checkbox(gr.Checkbox):
        """``gr.Checkbox`` that wants ``true`` or ``false``."""

        is_template = True

        def preprocess(self, payload):
            if not isinstance(payload, bool):
                raise UserError(f"{_label(self)} must be true or false (got {short(payload)}).")
            return super().preprocess(payload)
