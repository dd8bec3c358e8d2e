"""sandbox_injector: claim warm sandboxes of sandbox-injector pools from
Python, run commands in them, stream their output and move files.

    from sandbox_injector import Sandbox

    with Sandbox.claim("python", namespace="team-a", env={"API_KEY": "..."}, lifetime=600) as sb:
        r = sb.run(["python3", "-c", "print(6*7)"])
        print(r.exit_code, r.stdout)
        for ev in sb.stream("for i in 1 2 3; do echo $i; sleep 1; done"):
            print(ev)
        sb.files.write("data/in.txt", "hello")
        print(sb.files.read("data/in.txt"))

``Runner`` / ``AsyncRunner`` talk to one runner whose address and token you
already have (no Kubernetes involved).
"""

from .errors import (ClaimError, ClaimFailed, ClaimTimeout, CommandError, CommandFailed, CommandNotExecutable,
                     CommandNotFound, CommandTimedOut, FileNotFound, InvalidRequest, NoSandboxAvailable, PoolNotFound,
                     RequestTooLarge, RunnerBusy, RunnerError, RunnerUnreachable, SandboxError, SandboxExpired,
                     SandboxReleased, Unauthorized)
from .kube import Kube
from .runner import AsyncRunner, Runner
from .sandbox import AsyncSandbox, Sandbox
from .types import ExitEvent, FileInfo, OutputEvent, Result, StreamEvent

__version__ = "0.1.0"

__all__ = [
    "AsyncRunner", "AsyncSandbox", "ClaimError", "ClaimFailed", "ClaimTimeout", "CommandError", "CommandFailed",
    "CommandNotExecutable", "CommandNotFound", "CommandTimedOut", "ExitEvent", "FileInfo", "FileNotFound",
    "InvalidRequest", "Kube", "NoSandboxAvailable", "OutputEvent", "PoolNotFound", "RequestTooLarge", "Result",
    "Runner", "RunnerBusy", "RunnerError", "RunnerUnreachable", "Sandbox", "SandboxError", "SandboxExpired",
    "SandboxReleased", "StreamEvent", "Unauthorized",
]
