"""Typed errors of the sandbox-injector client.

Every error carries the message of the side that refused (the runner's
``{"error": ...}`` body, the API server's Status message, or the claim's
condition message), so that what the server said is never lost.
"""

from __future__ import annotations

from typing import Optional, TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from .types import Result


class SandboxError(Exception):
    """Base class of every error this package raises."""

    def __init__(self, message: str, *, status_code: Optional[int] = None, reason: Optional[str] = None):
        super().__init__(message)
        self.message = message
        #: HTTP status of the answer that caused the error, when there was one.
        self.status_code = status_code
        #: Machine-readable reason (a claim condition reason), when known.
        self.reason = reason

    def __str__(self) -> str:
        return self.message


# --- claims -----------------------------------------------------------------


class ClaimError(SandboxError):
    """The SandboxClaim did not give a sandbox."""


class NoSandboxAvailable(ClaimError):
    """No warm pod of the pool was free and a cold one was not allowed
    (``cold_start=False``), or none became ready in time."""


class PoolNotFound(ClaimError):
    """The claim names a SandboxPool that does not exist in its namespace."""


class ClaimFailed(ClaimError):
    """The controller failed the claim for another reason (see ``reason``)."""


class ClaimTimeout(NoSandboxAvailable):
    """The claim was not bound within the client's wait."""


class SandboxExpired(ClaimError):
    """The claim's lifetime is over: its sandbox was deleted."""


class SandboxReleased(ClaimError):
    """The sandbox was used after its claim was deleted."""


# --- runner -------------------------------------------------------------------


class RunnerUnreachable(SandboxError):
    """The runner could not be reached, or the connection broke mid-answer."""


class RunnerError(SandboxError):
    """The runner (or the API server's proxy in front of it) refused a request."""


class Unauthorized(RunnerError):
    """The runner refused the token (401/403)."""


class InvalidRequest(RunnerError):
    """The runner refused the request as malformed (400/422), e.g. a bad path."""


class FileNotFound(RunnerError):
    """The file or directory does not exist in the sandbox (404)."""


class RequestTooLarge(RunnerError):
    """The request or upload is over the runner's limit (413)."""


class RunnerBusy(RunnerError):
    """Too many commands run at once in the sandbox (429); retry later."""


# --- commands -----------------------------------------------------------------


class CommandError(SandboxError):
    """The command did not run to its end; ``result`` holds what is known."""

    def __init__(self, message: str, result: "Result"):
        super().__init__(message)
        self.result = result


class CommandNotFound(CommandError):
    """The command does not exist in the sandbox's image (exit code 127)."""


class CommandNotExecutable(CommandError):
    """The command exists but could not be started (exit code 126)."""


class CommandTimedOut(CommandError):
    """The command ran longer than its timeout and was killed with its
    process group; ``result`` has the output it wrote until then."""


class CommandFailed(CommandError):
    """The command exited non-zero and ``check=True`` was asked."""
