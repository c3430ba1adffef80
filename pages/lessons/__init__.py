"""The *Start here* tab: a guided path of short lessons (:mod:`.content`), each with a button
that sets up the tab it needs (every control) and opens it.

A view only: the lessons are data (:data:`.content.LESSONS`); :func:`render` lays them out and
returns their buttons, which :func:`pages.links.wire` connects to the tabs (a lesson's settings
are applied exactly as a link's are).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import gradio as gr

from pages import common

from .content import LESSONS, Lesson

__all__ = ["LESSONS", "Lesson", "render", "settings_md"]

PER_ROW = 2


def _value_text(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, list | tuple):
        return ", ".join(map(str, value))
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def settings_md(lesson: Lesson, label: str) -> str:
    """The small line under a lesson: where it goes and what it sets."""
    parts = " · ".join(f"{name} = {_value_text(v)}" for name, v in lesson.settings)
    return f"*Opens **{label}** with* {parts} *(everything else at its default).*"


def card_md(number: int, lesson: Lesson) -> str:
    """A lesson's text: title, the few sentences, what to notice, the question."""
    return (f"### {number} · {lesson.title}\n\n{lesson.text}\n\n"
            f"**What to notice.** {lesson.notice}\n\n**Think about.** {lesson.question}")


def render(labels: Mapping[str, str]) -> list[tuple[gr.Button, Lesson]]:
    """Build the tab inside the caller's ``gr.Tab``; ``labels`` maps tab ids to the names on
    the tab bar. Returns each lesson's button with its lesson."""
    gr.Markdown(common.explanation("lessons"))
    buttons: list[tuple[gr.Button, Lesson]] = []
    for start in range(0, len(LESSONS), PER_ROW):
        with gr.Row(equal_height=False):
            for i, lesson in enumerate(LESSONS[start:start + PER_ROW], start=start + 1):
                label = labels.get(lesson.tab, lesson.tab)
                with gr.Column(min_width=320), gr.Group():
                    gr.Markdown(card_md(i, lesson), latex_delimiters=common.LATEX,
                                padding=True)
                    gr.Markdown(settings_md(lesson, label), elem_classes=["dl-limit"],
                                padding=True)
                    button = gr.Button(f"▶ Set up tab {label}", variant="primary",
                                       size="sm", elem_id=f"lesson-{lesson.key}")
                buttons.append((button, lesson))
    return buttons
