"""Sandbox: one claimed sandbox, from SandboxClaim to release.

    with Sandbox.claim("python", namespace="team-a", lifetime=600) as sb:
        print(sb.run("python3 -c 'print(6*7)'").stdout)

``claim`` generates a token, creates a SandboxClaim holding only its SHA-256,
waits until the controller bound it, then talks to the pod's runner with the
token. Leaving the block (or ``release()``) deletes the claim, which deletes
the pod.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import functools
from typing import Any, AsyncIterator, Dict, Iterator, Mapping, Optional, Union

from . import errors
from .kube import Kube, expires_at, new_token
from .runner import AsyncRunner, Command, Runner
from .types import Result, StreamEvent, _parse_time

#: How to reach the runner: "direct" (pod IP; inside the cluster), "proxy"
#: (the API server's pod proxy; works from anywhere the API server is
#: reachable), or "auto" (direct in a pod, proxy elsewhere).
CONNECT_MODES = ("auto", "direct", "proxy")

#: HTTP/2 to the API server when the h2 package is there (pip install
#: sandbox-injector[http2], or Debian's python3-h2). Over HTTP/1.1 the API
#: server's pod proxy cuts streamed answers now and then (its HTTP/1 server
#: and reverse proxy drop the upstream connection mid-body: measured on a real
#: kube-apiserver, about 1 stream in 10 cut, 0 in 60 over HTTP/2).
try:
    import h2  # noqa: F401

    HTTP2 = True
except ImportError:  # pragma: no cover - depends on the environment
    HTTP2 = False

#: Clock skew allowed between this machine and the controller when a broken
#: connection near status.expiresAt is read as the expiry.
EXPIRY_SKEW = _dt.timedelta(seconds=2)


class _Claimed:
    """What the sync and async sandboxes share: the claim and its kube side."""

    def __init__(self, kube: Kube, namespace: str, obj: Dict[str, Any], token: str, connect: str, own_kube: bool):
        self._kube = kube
        self._own_kube = own_kube
        self.namespace = namespace
        self.name: str = obj["metadata"]["name"]
        st = obj.get("status") or {}
        self.pod: str = st["podName"]
        self.pod_ip: str = st.get("podIP", "")
        self.runner_port: int = int(st["runnerPort"])
        self.node: str = st.get("nodeName", "")
        self.origin: str = st.get("origin", "")
        self.bound_at: Optional[_dt.datetime] = _parse_time(st.get("boundAt"))
        self.expires_at: Optional[_dt.datetime] = expires_at(obj)
        self.token = token
        if connect == "auto":
            connect = "direct" if kube.in_cluster else "proxy"
        if connect == "direct" and not self.pod_ip:
            raise errors.ClaimFailed(f"SandboxClaim {namespace}/{self.name} is bound but has no podIP")
        self.connect = connect
        self.released = False

    def _runner_kwargs(self) -> Dict[str, Any]:
        if self.connect == "proxy":
            verify, cert = self._kube.proxy_tls()
            return {"base_url": self._kube.proxy_url(self.namespace, self.pod, self.runner_port), "via_proxy": True,
                    "headers": self._kube.proxy_headers, "verify": verify, "cert": cert, "http2": HTTP2}
        host = f"[{self.pod_ip}]" if ":" in self.pod_ip else self.pod_ip
        return {"base_url": f"http://{host}:{self.runner_port}", "via_proxy": False}

    def _explain(self, err: errors.SandboxError) -> errors.SandboxError:
        """A runner that cannot be reached, or refuses the token, may be gone
        with its claim: say so (expired, released) when the claim says so."""
        if self.released:
            return errors.SandboxReleased(f"SandboxClaim {self.namespace}/{self.name} was released: {err}")
        if not isinstance(err, (errors.RunnerUnreachable, errors.Unauthorized)):
            return err
        try:
            obj = self._kube.get_claim(self.namespace, self.name)
        except errors.SandboxError:
            return err
        if obj is None:
            return errors.SandboxReleased(f"SandboxClaim {self.namespace}/{self.name} no longer exists: {err}")
        st = obj.get("status") or {}
        phase = st.get("phase")
        end = _parse_time(st.get("expiresAt"))
        if phase == "Bound" and end is not None and _dt.datetime.now(_dt.timezone.utc) >= end - EXPIRY_SKEW:
            # The controller deletes the pod, then writes Expired: a cut seen
            # in between is the expiry already.
            phase = "Expired"
        if phase == "Expired":
            return errors.SandboxExpired(f"SandboxClaim {self.namespace}/{self.name} expired: {err}",
                                         reason="Expired")
        if phase == "Failed":
            return errors.ClaimFailed(f"SandboxClaim {self.namespace}/{self.name} failed: {err}", reason="Failed")
        return err

    def _check_open(self) -> None:
        if self.released:
            raise errors.SandboxReleased(f"SandboxClaim {self.namespace}/{self.name} was released")

    def _extend(self, seconds: float) -> Optional[_dt.datetime]:
        self._check_open()
        if seconds <= 0:
            raise ValueError(f"extend by {seconds} seconds: must be positive")
        obj = self._kube.get_claim(self.namespace, self.name)
        if obj is None:
            raise errors.SandboxReleased(f"SandboxClaim {self.namespace}/{self.name} no longer exists")
        st = obj.get("status") or {}
        if st.get("phase") == "Expired":
            raise errors.SandboxExpired(f"SandboxClaim {self.namespace}/{self.name} already expired",
                                        reason="Expired")
        cur = (obj.get("spec") or {}).get("activeDeadlineSeconds")
        bound_at = _parse_time(st.get("boundAt"))
        # As the Go client does: the sandbox ends `seconds` from now (the
        # deadline counts from binding), but an extension never shortens it.
        elapsed = 0.0
        if bound_at:
            elapsed = max(0.0, (_dt.datetime.now(_dt.timezone.utc) - bound_at).total_seconds())
        new = int(elapsed + seconds + 0.999)
        if cur is not None and cur >= new:
            return self.expires_at
        patch = {"metadata": {"resourceVersion": obj["metadata"]["resourceVersion"]},
                 "spec": {"activeDeadlineSeconds": new}}
        self._kube.patch_claim(self.namespace, self.name, patch)
        if bound_at:
            self.expires_at = bound_at + _dt.timedelta(seconds=new)
        return self.expires_at

    def _release(self) -> None:
        if self.released:
            return
        self.released = True
        try:
            self._kube.delete_claim(self.namespace, self.name)
        finally:
            if self._own_kube:
                self._kube.close()

    def __repr__(self) -> str:
        return (f"<{type(self).__name__} {self.namespace}/{self.name} pod={self.pod} origin={self.origin} "
                f"via={self.connect}{' released' if self.released else ''}>")


def _claim(pool: str, namespace: Optional[str], env: Optional[Mapping[str, str]], lifetime: Optional[float],
           cold_start: bool, connect: str, kube: Optional[Kube], kubeconfig: Optional[str], context: Optional[str],
           timeout: float, name: Optional[str]):
    if connect not in CONNECT_MODES:
        raise ValueError(f"connect {connect!r} is not one of {', '.join(CONNECT_MODES)}")
    if lifetime is not None and lifetime < 1:
        raise ValueError(f"lifetime {lifetime} is under 1 second")
    own = kube is None
    k = kube or Kube(kubeconfig=kubeconfig, context=context)
    ns = namespace or k.default_namespace
    token, digest = new_token()
    try:
        obj = k.create_claim(ns, pool, digest, env, None if lifetime is None else int(lifetime + 0.999), cold_start,
                             name=name)
    except BaseException:
        if own:
            k.close()
        raise
    cname = obj["metadata"]["name"]
    try:
        obj = k.wait_bound(ns, cname, obj["metadata"].get("resourceVersion"), timeout)
    except BaseException:
        # Nobody else will delete a claim we gave up on (KeyboardInterrupt too).
        try:
            k.delete_claim(ns, cname)
        finally:
            if own:
                k.close()
        raise
    return k, ns, obj, token, own


class Sandbox(_Claimed):
    """A claimed sandbox (synchronous). Create it with ``Sandbox.claim``."""

    @classmethod
    def claim(cls, pool: str, *, namespace: Optional[str] = None, env: Optional[Mapping[str, str]] = None,
              lifetime: Optional[float] = None, cold_start: bool = True, connect: str = "auto",
              kubeconfig: Optional[str] = None, context: Optional[str] = None, kube: Optional[Kube] = None,
              timeout: float = 120.0, name: Optional[str] = None) -> "Sandbox":
        """Claim a sandbox of ``pool`` and wait until it is bound.

        namespace: of the pool and the claim; default the kubeconfig
            context's, or the pod's own in a cluster.
        env: added to the environment of every command.
        lifetime: seconds from binding until the sandbox is deleted
            (``extend`` adds more); default none.
        cold_start: False fails with NoSandboxAvailable at once when no warm
            pod is free, instead of waiting for a pod made for the claim.
        connect: "direct", "proxy" or "auto" (see CONNECT_MODES).
        timeout: seconds to wait for binding (then ClaimTimeout, and the
            claim is deleted).

        Raises NoSandboxAvailable, PoolNotFound, ClaimFailed, ClaimTimeout.
        """
        k, ns, obj, token, own = _claim(pool, namespace, env, lifetime, cold_start, connect, kube, kubeconfig,
                                        context, timeout, name)
        try:
            return cls(k, ns, obj, token, connect, own)
        except BaseException:
            k.delete_claim(ns, obj["metadata"]["name"])
            raise

    def __init__(self, kube: Kube, namespace: str, obj: Dict[str, Any], token: str, connect: str = "auto",
                 own_kube: bool = False):
        super().__init__(kube, namespace, obj, token, connect, own_kube)
        self.runner = Runner(token=self.token, on_error=self._explain, **self._runner_kwargs())
        self.files = _GuardedFiles(self)

    def run(self, cmd: Command, *, stdin: Optional[Union[str, bytes]] = None, env: Optional[Mapping[str, str]] = None,
            cwd: Optional[str] = None, timeout: Optional[float] = None, check: bool = False) -> Result:
        """Run ``cmd`` (argv list, or a shell string) and wait for its result;
        see Runner.run for the errors."""
        self._check_open()
        return self.runner.run(cmd, stdin=stdin, env=env, cwd=cwd, timeout=timeout, check=check)

    def stream(self, cmd: Command, *, stdin: Optional[Union[str, bytes]] = None,
               env: Optional[Mapping[str, str]] = None, cwd: Optional[str] = None,
               timeout: Optional[float] = None, check: bool = False) -> Iterator[StreamEvent]:
        """Run ``cmd`` and yield OutputEvents as they arrive, then an ExitEvent."""
        self._check_open()
        return self.runner.stream(cmd, stdin=stdin, env=env, cwd=cwd, timeout=timeout, check=check)

    def status(self) -> Dict[str, Any]:
        """The runner's /status."""
        self._check_open()
        return self.runner.status()

    def extend(self, seconds: float) -> Optional[_dt.datetime]:
        """Make the sandbox end ``seconds`` from now (never earlier than it
        would have); returns the new expiry time. SandboxExpired when it
        already ended."""
        return self._extend(seconds)

    def release(self) -> None:
        """Delete the claim (and so the sandbox). Idempotent."""
        try:
            self.runner.close()
        finally:
            self._release()

    def __enter__(self) -> "Sandbox":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()


class _GuardedFiles:
    """Sandbox.files: the runner's Files, refused after release."""

    def __init__(self, sb: Sandbox):
        self._sb = sb

    def __getattr__(self, attr: str) -> Any:
        self._sb._check_open()
        return getattr(self._sb.runner.files, attr)


class AsyncSandbox(_Claimed):
    """A claimed sandbox for asyncio: ``async with AsyncSandbox.claim(...) as sb``
    (or ``sb = await AsyncSandbox.claim(...)``). The Kubernetes calls run in a
    thread (the kubernetes client is synchronous); the runner is reached with
    httpx.AsyncClient."""

    @classmethod
    def claim(cls, pool: str, **kw: Any) -> "_AsyncClaim":
        """The arguments of Sandbox.claim."""
        return _AsyncClaim(cls, pool, kw)

    def __init__(self, kube: Kube, namespace: str, obj: Dict[str, Any], token: str, connect: str = "auto",
                 own_kube: bool = False):
        super().__init__(kube, namespace, obj, token, connect, own_kube)
        self.runner = AsyncRunner(token=self.token, on_error=self._explain, **self._runner_kwargs())
        self.files = self.runner.files

    async def run(self, cmd: Command, **kw: Any) -> Result:
        self._check_open()
        return await self.runner.run(cmd, **kw)

    async def stream(self, cmd: Command, **kw: Any) -> AsyncIterator[StreamEvent]:
        self._check_open()
        async for ev in self.runner.stream(cmd, **kw):
            yield ev

    async def status(self) -> Dict[str, Any]:
        self._check_open()
        return await self.runner.status()

    async def extend(self, seconds: float) -> Optional[_dt.datetime]:
        return await asyncio.get_running_loop().run_in_executor(None, self._extend, seconds)

    async def release(self) -> None:
        try:
            await self.runner.aclose()
        finally:
            await asyncio.get_running_loop().run_in_executor(None, self._release)

    async def __aenter__(self) -> "AsyncSandbox":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.release()


class _AsyncClaim:
    """Awaitable and async context manager around one AsyncSandbox claim."""

    def __init__(self, cls: type, pool: str, kw: Dict[str, Any]):
        self._cls, self._pool, self._kw = cls, pool, kw
        self._sb: Optional[AsyncSandbox] = None

    async def _do(self) -> AsyncSandbox:
        kw = dict(self._kw)
        connect = kw.get("connect", "auto")
        call = functools.partial(_claim, self._pool, kw.get("namespace"), kw.get("env"), kw.get("lifetime"),
                                 kw.get("cold_start", True), connect, kw.get("kube"), kw.get("kubeconfig"),
                                 kw.get("context"), kw.get("timeout", 120.0), kw.get("name"))
        unknown = set(kw) - {"namespace", "env", "lifetime", "cold_start", "connect", "kube", "kubeconfig",
                             "context", "timeout", "name"}
        if unknown:
            raise TypeError(f"AsyncSandbox.claim got unexpected arguments {sorted(unknown)}")
        k, ns, obj, token, own = await asyncio.get_running_loop().run_in_executor(None, call)
        return self._cls(k, ns, obj, token, connect, own)

    def __await__(self):
        return self._do().__await__()

    async def __aenter__(self) -> AsyncSandbox:
        self._sb = await self._do()
        return self._sb

    async def __aexit__(self, *exc: Any) -> None:
        if self._sb is not None:
            await self._sb.release()
