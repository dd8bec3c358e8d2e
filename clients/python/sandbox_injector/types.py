"""Values the runner answers with (its wire types: runner/api/types.go)."""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Union


@dataclass(frozen=True)
class Result:
    """The end of one command (runner ``ExecuteResult``)."""

    exit_code: int
    stdout: str = ""
    stderr: str = ""
    duration_ms: float = 0.0
    timed_out: bool = False
    truncated: bool = False
    #: Why the command did not run (not found, not executable); empty when it ran.
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out and not self.error

    @classmethod
    def from_json(cls, d: Mapping[str, Any], stdout: Optional[str] = None, stderr: Optional[str] = None) -> "Result":
        return cls(
            exit_code=int(d.get("exit_code", 0)),
            stdout=d.get("stdout", "") if stdout is None else stdout,
            stderr=d.get("stderr", "") if stderr is None else stderr,
            duration_ms=float(d.get("duration_ms", 0.0)),
            timed_out=bool(d.get("timed_out", False)),
            truncated=bool(d.get("truncated", False)),
            error=d.get("error", "") or "",
        )


@dataclass(frozen=True)
class OutputEvent:
    """A chunk of output as the command wrote it; ``stream`` is
    ``"stdout"`` or ``"stderr"``."""

    stream: str
    data: str


@dataclass(frozen=True)
class ExitEvent:
    """The last event of a stream: the command's result (its ``stdout`` and
    ``stderr`` are the concatenated chunks streamed before)."""

    result: Result

    @property
    def exit_code(self) -> int:
        return self.result.exit_code


StreamEvent = Union[OutputEvent, ExitEvent]


def _parse_time(s: Optional[str]) -> Optional[_dt.datetime]:
    if not s:
        return None
    s = s.replace("Z", "+00:00")
    # Go writes up to nanoseconds; Python parses at most microseconds.
    if "." in s:
        head, _, rest = s.partition(".")
        frac = "".join(c for c in rest if c.isdigit())
        tz = rest[len(frac):]
        s = f"{head}.{frac[:6]}{tz}"
    return _dt.datetime.fromisoformat(s)


@dataclass(frozen=True)
class FileInfo:
    """One entry of a directory listing (runner ``FileInfo``)."""

    name: str
    size: int
    dir: bool
    mode: str
    symlink: bool = False
    mtime: Optional[_dt.datetime] = None

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "FileInfo":
        return cls(
            name=d["name"],
            size=int(d.get("size", 0)),
            dir=bool(d.get("dir", False)),
            mode=d.get("mode", ""),
            symlink=bool(d.get("symlink", False)),
            mtime=_parse_time(d.get("mtime")),
        )
