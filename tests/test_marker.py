"""syncd's marker in a vendor's description: written last, read wherever it ended up."""

from __future__ import annotations

import pytest

from syncd.model import split_marker, with_marker


@pytest.mark.parametrize(
    ("description", "body"),
    [
        ("", ""),
        ("Agenda", "Agenda"),
        ("Line 1\nLine 2", "Line 1\nLine 2"),
    ],
)
def test_the_marker_round_trips(description: str, body: str) -> None:
    assert split_marker(with_marker(description, "cal:u@x.test:20270301T090000Z")) == (
        body,
        "cal:u@x.test:20270301T090000Z",
    )


def test_a_marker_followed_by_a_users_note_is_still_read() -> None:
    text = with_marker("Agenda", "cal:e1") + "\nCall back on Tuesday"
    assert split_marker(text) == ("Agenda\nCall back on Tuesday", "cal:e1")


def test_a_marker_inside_markup_is_read_without_the_markup() -> None:
    assert split_marker("<p>Agenda</p><p>syncd-key: cal:e1</p>")[1] == "cal:e1"


def test_no_marker_leaves_the_description_alone() -> None:
    assert split_marker("just notes") == ("just notes", "")
