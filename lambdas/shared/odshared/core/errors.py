"""Named errors with the location of bad input, so a message always says which file, line or key to fix."""

from __future__ import annotations

from dataclasses import dataclass


class OdError(Exception):
    """Base of the project's errors; Step Functions Retry/Catch match on the class name."""


class StorageError(OdError):
    """An S3 or file operation failed for a reason the user can fix (missing bucket, denied, not found)."""


class InputDataError(OdError):
    """Input data (a video, an image, a model) cannot be used."""


@dataclass(frozen=True)
class InvalidLine:
    """One rejected line of a JSON Lines file, with where it came from and why."""

    source: str
    line: int
    reason: str
    raw: str

    def describe(self) -> str:
        return f"{self.source}:{self.line}: {self.reason}"

    def to_record(self) -> dict[str, object]:
        return {"source": self.source, "line": self.line, "reason": self.reason, "raw": self.raw}


class ManifestError(OdError):
    """A manifest holds invalid lines; nothing was written (use --skip-invalid to keep the valid ones)."""

    def __init__(self, invalid: list[InvalidLine], shown: int = 10) -> None:
        self.invalid = invalid
        head = "; ".join(item.describe() for item in invalid[:shown])
        more = f" (and {len(invalid) - shown} more)" if len(invalid) > shown else ""
        super().__init__(f"{len(invalid)} invalid manifest line(s): {head}{more}")


class LineError(ValueError):
    """Raised by a line parser; the caller adds the file and line number."""
