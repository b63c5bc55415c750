"""The in-direction in the image's own words for any line: a horizontal door line's top-to-bottom is a move down
the picture, counted by the real Counter; a word that runs along the line is refused with the words that fit; the
words deployed before keep their meaning."""

from __future__ import annotations

import json

import pytest

from odctl.cli import main
from odctl.cli_types import shape_option
from odedge.counting import Counter, parse_lines
from odedge.postprocess import Detection

SIZE = (640, 360)


def _walk_down(counter: Counter, ys) -> list[str]:
    """A 40x40 box in the middle of the picture moving to each y (pixels)."""
    events = []
    for t, y in enumerate(ys):
        box = Detection("carton", 0, 0.9, (300, int(y - 20), 340, int(y + 20)), 1)
        events += counter.observe([box], SIZE, float(t))
    return [event["direction"] for event in events]


@pytest.mark.parametrize(
    ("text", "down", "up"),
    [
        ("door:0,0.5,1,0.5:top-to-bottom", "in", "out"),
        ("door:1,0.5,0,0.5:top-to-bottom", "in", "out"),  # drawn right to left: the same image words
        ("door:0,0.5,1,0.5:bottom-to-top", "out", "in"),
        ("door:0.1,0.4,0.9,0.6:top-to-bottom", "in", "out"),  # a slanted line across the picture
    ],
)
def test_top_to_bottom_counts_a_move_down_the_picture_as_in(text, down, up):
    lines = parse_lines(json.dumps([shape_option(text, "--line")]))
    counter = Counter(lines, [])
    assert _walk_down(counter, [100, 150, 210, 260]) == [down]
    assert _walk_down(counter, [260, 210, 150, 100]) == [up]


def test_left_to_right_on_a_vertical_line_drawn_upwards_is_still_a_move_to_the_right():
    (line,) = parse_lines(json.dumps([shape_option("door:0.5,1,0.5,0:left-to-right", "--line")]))
    assert line.side((0.8, 0.5), 0.04) == (1 if line.inward == "left-to-right" else -1)


def test_a_word_along_the_line_is_refused_with_the_words_that_fit(capsys):
    with pytest.raises(ValueError, match="'left-to-right' runs along this line: say top-to-bottom or bottom-to-top"):
        shape_option("door:0,0.5,1,0.5:left-to-right", "--line")
    assert main(["evaluate-tracking", "v.mp4", "--model", "m", "--line", "door:0,0.5,1,0.5:sideways"]) == 2
    assert "sideways" in capsys.readouterr().err


def test_a_deployed_configuration_keeps_its_meaning_and_the_device_takes_the_image_words():
    """left-to-right on a horizontal line meant a move up (the line's own sides) before: it still does."""
    (old,) = parse_lines('[{"name": "door", "points": [[0, 0.5], [1, 0.5]], "in": "left-to-right"}]')
    assert _walk_down(Counter([old], []), [260, 210, 150, 100]) == ["in"]
    (new,) = parse_lines('[{"name": "door", "points": [[0, 0.5], [1, 0.5]], "in": "top-to-bottom"}]')
    assert _walk_down(Counter([new], []), [100, 150, 210, 260]) == ["in"]
    with pytest.raises(ValueError, match=r"lines\[0\]\.in: direction 'top-to-bottom' runs along this line"):
        parse_lines('[{"name": "door", "points": [[0.5, 0], [0.5, 1]], "in": "top-to-bottom"}]')
