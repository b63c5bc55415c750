"""The in-direction in the image's own words for any line: a horizontal door line's top-to-bottom is a move down
the picture, counted by the real Counter; a word that runs along the line is refused with the words that fit; the
words deployed before keep their meaning."""

from __future__ import annotations

import json

import pytest

from odctl.cli import main
from odctl.cli_types import shape_option
from odedge.counting import DIRECTIONS, Counter, parse_lines
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


@pytest.mark.parametrize(
    ("points", "fitting"),
    [
        ("0,0.4,1,0.6", ["top-to-bottom", "bottom-to-top"]),  # about 11 degrees off horizontal
        ("0.2,0.2,0.6,0.5", ["top-to-bottom", "bottom-to-top"]),  # about 37 degrees: the vertical axis is closer
        ("0.4,0.1,0.6,0.9", ["left-to-right", "right-to-left"]),  # a steep one
    ],
)
def test_a_slanted_line_takes_the_words_of_the_axis_closer_to_square_with_it(points, fitting):
    for word in ("left-to-right", "right-to-left", "top-to-bottom", "bottom-to-top"):
        if word in fitting:
            assert shape_option(f"door:{points}:{word}", "--line")["in"] in (word, *DIRECTIONS)
        else:
            with pytest.raises(ValueError, match=f"runs along this line: say {' or '.join(fitting)}"):
                shape_option(f"door:{points}:{word}", "--line")


@pytest.mark.parametrize("points", ["0.1,0.1,0.9,0.9", "0.1,0.1,0.9,0.82"])  # 45 degrees, and 42
def test_a_diagonal_takes_either_pair_and_both_name_the_same_side(points):
    def counted(word: str) -> list[str]:
        (line,) = parse_lines(json.dumps([shape_option(f"door:{points}:{word}", "--line")]))
        counter, events = Counter([line], []), []
        for t, (x, y) in enumerate([(420, 60), (400, 80), (300, 180), (220, 260), (200, 280)]):  # down and left
            box = Detection("carton", 0, 0.9, (x - 20, y - 20, x + 20, y + 20), 1)
            events += counter.observe([box], SIZE, float(t))
        return [event["direction"] for event in events]

    assert counted("top-to-bottom") == counted("right-to-left") == ["in"]
    assert counted("bottom-to-top") == counted("left-to-right") == ["out"]


def _deprecations(caplog) -> list[dict]:
    return [r.fields for r in caplog.records if r.getMessage() == "counting.direction_deprecated"]


@pytest.mark.parametrize(
    ("entry", "counts_as"),
    [
        ('"points": [[0, 0.5], [1, 0.5]], "in": "left-to-right"', "bottom-to-top"),
        ('"points": [[0, 0.5], [1, 0.5]]', "bottom-to-top"),  # no "in": the same default as ever
        ('"points": [[1, 0.5], [0, 0.5]], "in": "left-to-right"', "top-to-bottom"),  # drawn the other way
    ],
)
def test_a_deployed_word_along_the_line_counts_as_before_and_the_device_logs_the_fix(entry, counts_as, caplog):
    caplog.set_level("WARNING", logger="odedge.counting")
    (old,) = parse_lines(f'[{{"name": "door", {entry}}}]')
    ways = {"bottom-to-top": _walk_down(Counter([old], []), [260, 210, 150, 100])}
    ways["top-to-bottom"] = _walk_down(Counter([old], []), [100, 150, 210, 260])
    assert ways[counts_as] == ["in"]
    (logged,) = _deprecations(caplog)
    assert logged["line"] == "door" and logged["counts_as"] == counts_as and f'"in": "{counts_as}"' in logged["fix"]
    (new,) = parse_lines(json.dumps([{"name": "door", "points": [old.start, old.end], "in": counts_as}]))
    assert new.digest() == old.digest()  # saying it in the image's words keeps the line's totals


def test_vertical_lines_and_the_configuration_check_log_nothing(caplog):
    caplog.set_level("WARNING", logger="odedge.counting")
    parse_lines('[{"name": "door", "points": [[0.5, 0], [0.5, 1]], "in": "left-to-right"}]')
    parse_lines('[{"name": "door", "points": [[0.5, 1], [0.5, 0]], "in": "right-to-left"}]')
    parse_lines('[{"name": "door", "points": [[0, 0.5], [1, 0.5]], "in": "left-to-right"}]', notify=False)
    assert _deprecations(caplog) == []


def test_odctl_writes_no_word_the_device_would_log_and_keeps_what_no_word_meant(caplog):
    """Without a direction, a line across the picture gets the image's word for the old default written out; a
    line down it keeps the device's default (a move right across a line drawn downwards)."""
    caplog.set_level("WARNING", logger="odedge.counting")
    assert shape_option("door:0,0.5,1,0.5", "--line")["in"] == "bottom-to-top"
    assert shape_option("door:1,0.5,0,0.5", "--line")["in"] == "top-to-bottom"
    assert "in" not in shape_option("door:0.5,0,0.5,1", "--line")
    written = [
        shape_option(text, "--line")
        for text in (
            "a:0,0.5,1,0.5",
            "b:0,0.5,1,0.5:top-to-bottom",
            "c:0.5,1,0.5,0:left-to-right",
            "d:0.5,0,0.5,1:right-to-left",
            "e:0.1,0.1,0.9,0.9:left-to-right",
        )
    ]
    parse_lines(json.dumps(written))
    assert _deprecations(caplog) == []
    assert written[2]["in"] == "right-to-left"  # the line's own word (drawn upwards) for a move to the right


def test_a_zone_takes_no_direction():
    with pytest.raises(ValueError, match="a zone has no direction"):
        shape_option("bay:0.1,0.1,0.4,0.1,0.4,0.4:top-to-bottom", "--zone")


def test_the_device_keeps_a_slanted_line_that_odctl_would_now_ask_to_say_otherwise():
    """55 degrees off horizontal: odctl asks for left-to-right or right-to-left (the closer axis); a configuration
    with top-to-bottom, which the device took before, still counts a move down as in."""
    with pytest.raises(ValueError, match="say left-to-right or right-to-left"):
        shape_option("door:0.3,0.1,0.58,0.5:top-to-bottom", "--line")
    (line,) = parse_lines('[{"name": "door", "points": [[0.3, 0.1], [0.58, 0.5]], "in": "top-to-bottom"}]')
    assert line.side((0.3, 0.6), 0.04) == (1 if line.inward == "left-to-right" else -1)  # below the line: in
