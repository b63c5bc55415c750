"""Ground Truth input manifests (``{"source-ref": ...}`` per line) built from frame listings.

Listings are streamed (S3 pages as they arrive, local folders one directory at a time) and lines are
written as they are produced, so memory stays flat however many objects there are.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from json.encoder import encode_basestring as encode_json_string
from typing import Any

from odshared.core import storage
from odshared.core.errors import InvalidLine, ManifestError, OdError
from odshared.core.jsonl import write_rejected
from odshared.core.log import log_event

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
# Placeholders that stand for numbers in a name and are matched but not copied into the manifest.
COUNTER_FIELDS = frozenset({"n", "frame"})


class PatternError(OdError):
    """A --metadata-from-name pattern cannot be used."""


def _file_stem(name: str) -> str:
    base = name.rsplit("/", 1)[-1]
    stem, dot, _ = base.rpartition(".")
    return stem if dot and stem else base


def video_stem(name: str) -> str:
    """``blue_box_1_000043.jpg`` -> ``blue_box_1``: the frames of one video share it."""
    stem = _file_stem(name)
    head, sep, tail = stem.rpartition("_")
    return head if sep and tail.isdigit() else stem


@dataclass(frozen=True)
class NamePattern:
    """``{color}_{object}_{n}``: fields parsed from a frame's video stem (or, failing that, its full stem)."""

    text: str
    regex: re.Pattern[str]
    fields: tuple[str, ...]
    _fragments: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def compile(cls, text: str) -> NamePattern:
        parts = re.split(r"(\{[^{}]*\})", text)
        regex, fields = "", []
        for part in parts:
            if part.startswith("{") and part.endswith("}"):
                name = part[1:-1]
                if not name.isidentifier():
                    raise PatternError(f"--metadata-from-name {text!r}: {part} is not a valid field name")
                if name in fields:
                    raise PatternError(f"--metadata-from-name {text!r}: field {name!r} appears twice")
                fields.append(name)
                regex += f"(?P<{name}>[^/]+?)"
            else:
                if "{" in part or "}" in part:
                    raise PatternError(f"--metadata-from-name {text!r}: unbalanced braces")
                regex += re.escape(part)
        if not fields:
            raise PatternError(f"--metadata-from-name {text!r}: no {{field}} in the pattern")
        return cls(text, re.compile(f"^{regex}$"), tuple(fields))

    def fragment(self, name: str, stem: str) -> str | None:
        """The JSON members (``,"color":"blue",...``) for a frame, or None when its name does not match."""
        cached = self._fragments.get(stem)
        if cached is not None:
            return cached
        fields = self.parse(name)
        if fields is None:
            return None
        text = "".join(f",{encode_json_string(k)}:{encode_json_string(v)}" for k, v in fields.items())
        if self.regex.match(stem):  # the video's name alone decides: every frame of it gets the same fields
            self._fragments[stem] = text
        return text

    def parse(self, name: str) -> dict[str, str] | None:
        for candidate in (video_stem(name), _file_stem(name)):
            match = self.regex.match(candidate)
            if match:
                return {
                    key: value
                    for key, value in match.groupdict().items()
                    if key not in COUNTER_FIELDS and not key.startswith("_")
                }
        return None


@dataclass
class ManifestSummary:
    out: str
    lines: int
    listed: int
    rejected: str | None = None
    invalid: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def build_input_manifest(
    inputs: Sequence[str],
    out: str,
    every: int = 1,
    pattern: str | None = None,
    skip_invalid: bool = False,
    on_item: Callable[[], None] | None = None,
    listing: Callable[[str], Iterable[str]] | None = None,
) -> ManifestSummary:
    """Write one manifest from several frame folders or prefixes, in frame order, sampled one in ``every``."""
    if every < 1:
        raise OdError(f"--every must be at least 1, got {every}")
    compiled = NamePattern.compile(pattern) if pattern else None
    lister = listing or (lambda uri: storage.list_files(uri, IMAGE_SUFFIXES))
    if not inputs:
        raise OdError("make-manifest needs at least one frames folder or s3:// prefix")
    storage.check_bucket(out)
    invalid: list[InvalidLine] = []
    listed = lines = 0
    # This loop runs a million times: lines are assembled from the quoted URI (json's C encoder) and a
    # metadata fragment that the pattern computes once per video.
    with storage.open_writer(out) as handle:
        write = handle.write
        for source in inputs:
            # a local folder is written as an absolute path: the manifest is read later, from elsewhere
            source = source if storage.is_s3(source) else os.path.abspath(source)
            current, index = None, 0
            for uri in lister(source):
                listed += 1
                if on_item:
                    on_item()
                name = uri.rsplit("/", 1)[-1]
                stem = video_stem(name)
                if stem != current:
                    current, index = stem, 0
                index += 1
                if (index - 1) % every:
                    continue
                fragment = "" if compiled is None else compiled.fragment(name, stem)
                if fragment is None:
                    assert compiled is not None  # no pattern: every name matches
                    invalid.append(
                        InvalidLine(
                            source, listed, f"{name!r} does not match --metadata-from-name {compiled.text!r}", uri
                        )
                    )
                    continue
                write('{"source-ref":' + encode_json_string(uri) + fragment + "}\n")
                lines += 1
        if invalid and not skip_invalid:
            raise ManifestError(invalid)
        if lines == 0:  # an empty manifest would start a labeling job with nothing to label
            raise OdError(f"no image listed under {', '.join(inputs)} (looked for {', '.join(IMAGE_SUFFIXES)})")
    rejected = None
    if invalid:
        rejected = storage.join(storage.parent(out), "rejected.jsonl")
        write_rejected(rejected, invalid)
    log_event(logger, "make_manifest.done", out=out, lines=lines, listed=listed, invalid=len(invalid))
    return ManifestSummary(out, lines, listed, rejected, len(invalid))
