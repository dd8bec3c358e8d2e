"""HTTP client of one sandbox runner (its API: runner/api/openapi.yaml).

``Runner`` is synchronous (``httpx.Client``), ``AsyncRunner`` the same API on
``httpx.AsyncClient``. Both reach the runner directly (``http://POD_IP:PORT``,
token in ``Authorization: Bearer``) or through the Kubernetes API server's pod
proxy (``.../pods/NAME:PORT/proxy``, token in ``X-Sandbox-Token``, because the
API server consumes ``Authorization`` for its own authentication).

Streams are read with no read timeout (a command may be silent for as long as
it likes; its own ``timeout`` bounds it on the runner), and a broken stream
is reported as ``RunnerUnreachable`` with what httpx saw, never as a silent
end of output.
"""

from __future__ import annotations

import json
import os
from typing import (Any, AsyncIterator, Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple,
                    Union)
from urllib.parse import quote

import httpx

from . import errors
from .types import ExitEvent, FileInfo, OutputEvent, Result, StreamEvent

#: Header that carries the sandbox token where Authorization cannot (the API
#: server's pod proxy consumes Authorization). Same as api.TokenHeader in Go.
TOKEN_HEADER = "X-Sandbox-Token"
CONTENT_TYPE_JSON = "application/json"
CONTENT_TYPE_NDJSON = "application/x-ndjson"

Command = Union[str, Sequence[str]]

#: Seconds to wait for a TCP/TLS connection.
CONNECT_TIMEOUT = 15.0
#: Seconds a non-command request (files, status) may stay silent.
READ_TIMEOUT = 120.0
#: Margin over a command's own timeout before the client gives up reading.
TIMEOUT_MARGIN = 60.0

# A hook that turns a transport failure into a better error (the Sandbox
# uses it to say "expired" or "released" when its claim says so).
ErrorHook = Callable[[errors.SandboxError], errors.SandboxError]


def execute_body(cmd: Command, stdin: Optional[Union[str, bytes]] = None, env: Optional[Mapping[str, str]] = None,
                 cwd: Optional[str] = None, timeout: Optional[float] = None) -> Dict[str, Any]:
    """The JSON body of POST /execute: a string is a shell script
    (``/bin/sh -c``), a sequence an argv run without a shell."""
    body: Dict[str, Any] = {}
    if isinstance(cmd, str):
        if not cmd:
            raise ValueError("command is empty")
        body["shell"] = cmd
    else:
        argv = [str(a) for a in cmd]
        if not argv or not argv[0]:
            raise ValueError("argv is empty")
        body["argv"] = argv
    if stdin:
        body["stdin"] = stdin.decode("utf-8") if isinstance(stdin, bytes) else stdin
    if env:
        body["env"] = {str(k): str(v) for k, v in env.items()}
    if cwd:
        body["cwd"] = cwd
    if timeout is not None:
        if timeout <= 0:
            raise ValueError(f"timeout {timeout} is not positive")
        body["timeout_ms"] = max(1, int(timeout * 1000))
    return body


def file_url_path(path: str) -> str:
    """``/files/<path>``, each element escaped. Paths are relative to the
    sandbox's work directory; absolute paths and ``..`` are refused here with
    the runner's own words instead of being rewritten."""
    if not path or path in (".", "/"):
        raise errors.InvalidRequest("a file name is required")
    if path.startswith("/"):
        raise errors.InvalidRequest(
            f"invalid path {path!r}: absolute paths are not allowed, paths are relative to the work directory")
    if ".." in path.split("/"):
        raise errors.InvalidRequest(f"invalid path {path!r}: \"..\" is not allowed")
    return "/files/" + "/".join(quote(e, safe="") for e in path.split("/"))


def error_from_answer(status: int, body: bytes, what: str) -> errors.SandboxError:
    """The typed error of a non-2xx answer, with the server's message: the
    runner's ``{"error": ...}``, or the API server's Status (proxy errors)."""
    msg = body.decode("utf-8", "replace").strip()
    from_runner = True
    try:
        d = json.loads(body)
        if isinstance(d, dict):
            if isinstance(d.get("error"), str):
                msg = d["error"]
            elif d.get("kind") == "Status":
                msg, from_runner = d.get("message") or msg, False
    except ValueError:
        from_runner = False  # a proxy's plain-text page
    text = f"{what}: {status}: {msg}"
    if not from_runner:
        # The API server answered for the pod: it is gone (404), or the
        # proxy could not reach it (5xx); refusals of our own credentials
        # stay Unauthorized.
        if status in (401, 403):
            return errors.Unauthorized(text, status_code=status)
        if status == 404 or status >= 500:
            return errors.RunnerUnreachable(text, status_code=status)
    cls = {
        400: errors.InvalidRequest,
        401: errors.Unauthorized,
        403: errors.Unauthorized,
        404: errors.FileNotFound,
        413: errors.RequestTooLarge,
        422: errors.InvalidRequest,
        429: errors.RunnerBusy,
    }.get(status, errors.RunnerError)
    return cls(text, status_code=status)


def check_result(res: Result, cmd: Command, check: bool) -> Result:
    """Raise the typed error of a result that did not run to its end."""
    name = cmd if isinstance(cmd, str) else (list(cmd)[0] if cmd else "")
    if res.error:
        if res.exit_code == 127:
            raise errors.CommandNotFound(res.error, res)
        raise errors.CommandNotExecutable(res.error, res)
    if res.timed_out:
        raise errors.CommandTimedOut(f"{name!r} timed out after {res.duration_ms / 1000:.1f}s and was killed", res)
    if check and res.exit_code != 0:
        raise errors.CommandFailed(f"{name!r} exited {res.exit_code}: {res.stderr.strip()[-500:]}", res)
    return res


class _LineSplitter:
    """Splits an NDJSON byte stream into decoded events."""

    def __init__(self) -> None:
        self.buf = bytearray()

    def feed(self, chunk: bytes) -> List[StreamEvent]:
        self.buf += chunk
        out: List[StreamEvent] = []
        start = 0
        while True:
            i = self.buf.find(b"\n", start)
            if i < 0:
                break
            line = bytes(self.buf[start:i])
            start = i + 1
            if line.strip():
                out.append(_event(line))
        del self.buf[:start]
        return out

    def rest(self) -> List[StreamEvent]:
        line, self.buf = bytes(self.buf), bytearray()
        return [_event(line)] if line.strip() else []


def _event(line: bytes) -> StreamEvent:
    try:
        d = json.loads(line)
    except ValueError as e:
        raise errors.RunnerError(f"decoding a line of the output stream: {e}: {line[:200]!r}") from e
    if d.get("stream"):
        return OutputEvent(stream=d["stream"], data=d.get("data", ""))
    return ExitEvent(Result.from_json(d, stdout="", stderr=""))


class _Base:
    """What the sync and async runners share: URLs, headers, timeouts."""

    def __init__(self, base_url: str, token: str, *, via_proxy: bool = False,
                 headers: Optional[Callable[[], Mapping[str, str]]] = None,
                 verify: Union[bool, str, Any] = True, cert: Optional[Tuple[str, str]] = None,
                 on_error: Optional[ErrorHook] = None, http2: bool = False):
        self.base_url = base_url.rstrip("/")
        self._http2 = http2
        self.token = token
        self.via_proxy = via_proxy
        self._extra_headers = headers
        self._verify = verify
        self._cert = cert
        self._on_error = on_error

    def _headers(self, extra: Optional[Mapping[str, str]] = None) -> Dict[str, str]:
        h: Dict[str, str] = {}
        if self._extra_headers is not None:
            h.update(self._extra_headers())
        if self.via_proxy:
            h[TOKEN_HEADER] = self.token
        else:
            h["Authorization"] = "Bearer " + self.token
        if extra:
            h.update(extra)
        return h

    def _client_kwargs(self) -> Dict[str, Any]:
        kw: Dict[str, Any] = {
            "verify": self._verify,
            "timeout": httpx.Timeout(READ_TIMEOUT, connect=CONNECT_TIMEOUT),
            # The pod proxy and the runner speak HTTP/1.1; no retries of
            # POST /execute (a command must never run twice).
        }
        if self._cert:
            kw["cert"] = self._cert
        if self._http2:
            kw["http2"] = True
        return kw

    @staticmethod
    def _exec_timeout(timeout: Optional[float]) -> httpx.Timeout:
        # No read timeout unless the command has one: output may pause for
        # as long as the command likes.
        read = None if timeout is None else timeout + TIMEOUT_MARGIN
        return httpx.Timeout(read, connect=CONNECT_TIMEOUT, write=READ_TIMEOUT, pool=None)

    def _fail(self, err: errors.SandboxError) -> errors.SandboxError:
        if self._on_error is not None:
            return self._on_error(err)
        return err

    def _unreachable(self, what: str, e: Exception) -> errors.SandboxError:
        return self._fail(errors.RunnerUnreachable(f"{what}: {type(e).__name__}({str(e)!r})"))


class Runner(_Base):
    """Synchronous client of one runner. ``files`` has the file operations."""

    def __init__(self, base_url: str, token: str, **kw: Any):
        super().__init__(base_url, token, **kw)
        self._http = httpx.Client(**self._client_kwargs())
        self.files = Files(self)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "Runner":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _request(self, method: str, path: str, what: str, **kw: Any) -> httpx.Response:
        headers = self._headers(kw.pop("headers", None))
        try:
            resp = self._http.request(method, self.base_url + path, headers=headers, **kw)
        except httpx.TransportError as e:
            raise self._unreachable(what, e) from e
        if resp.status_code >= 300:
            raise self._fail(error_from_answer(resp.status_code, resp.content, what))
        return resp

    def status(self) -> Dict[str, Any]:
        """GET /status: mode, version, child, executions, claim."""
        return self._request("GET", "/status", "reading the runner's status").json()

    def run(self, cmd: Command, *, stdin: Optional[Union[str, bytes]] = None, env: Optional[Mapping[str, str]] = None,
            cwd: Optional[str] = None, timeout: Optional[float] = None, check: bool = False) -> Result:
        """Run a command (argv list, or shell string) and return its result.

        Raises CommandNotFound, CommandNotExecutable, CommandTimedOut (the
        result is on the error), and CommandFailed for a non-zero exit when
        ``check`` is true. Output beyond the runner's cap (1 MiB per stream
        by default) is dropped and ``truncated`` is set; use ``stream`` for
        more."""
        body = execute_body(cmd, stdin, env, cwd, timeout)
        resp = self._request("POST", "/execute", "running a command", json=body,
                             timeout=self._exec_timeout(timeout))
        try:
            res = Result.from_json(resp.json())
        except ValueError as e:
            raise errors.RunnerError(f"decoding the execute result: {e}") from e
        return check_result(res, cmd, check)

    def stream(self, cmd: Command, *, stdin: Optional[Union[str, bytes]] = None,
               env: Optional[Mapping[str, str]] = None, cwd: Optional[str] = None,
               timeout: Optional[float] = None, check: bool = False) -> Iterator[StreamEvent]:
        """Run a command and yield its output as it arrives: OutputEvent
        chunks, then one ExitEvent (whose result has empty stdout and
        stderr: they were streamed). Errors are those of ``run``, raised
        after the output that came before them. Leaving the loop early
        closes the connection, which kills the command."""
        body = execute_body(cmd, stdin, env, cwd, timeout)
        what = "reading the output stream"
        headers = self._headers({"Accept": CONTENT_TYPE_NDJSON})
        exit_ev: Optional[ExitEvent] = None
        try:
            with self._http.stream("POST", self.base_url + "/execute", json=body, headers=headers,
                                   timeout=self._exec_timeout(timeout)) as resp:
                if resp.status_code >= 300:
                    resp.read()
                    raise self._fail(error_from_answer(resp.status_code, resp.content, "running a command"))
                split = _LineSplitter()
                chunks = resp.iter_bytes()
                for chunk in chunks:
                    for ev in split.feed(chunk):
                        if isinstance(ev, ExitEvent):
                            exit_ev = ev
                            break
                        yield ev
                    if exit_ev is not None:
                        break
                else:
                    for ev in split.rest():
                        if isinstance(ev, ExitEvent):
                            exit_ev = ev
                            break
                        yield ev
                if exit_ev is not None:
                    # Read the end of the chunked body so that the
                    # connection is reused; the result is in hand, so a
                    # connection cut now loses nothing.
                    try:
                        for _ in chunks:
                            pass
                    except httpx.TransportError:
                        pass
        except httpx.TransportError as e:
            raise self._unreachable(what, e) from e
        if exit_ev is not None:
            check_result(exit_ev.result, cmd, check)
            yield exit_ev
            return
        raise self._fail(errors.RunnerUnreachable(f"{what}: the stream ended without the command's result"))


def _chunks(f: Any, size: int = 64 << 10) -> Iterator[bytes]:
    while True:
        b = f.read(size)
        if not b:
            return
        yield b


class Files:
    """File operations in the sandbox's work directory (paths relative to it)."""

    def __init__(self, runner: Runner):
        self._r = runner

    def write(self, path: str, data: Union[bytes, str, Any], mode: Optional[int] = None) -> None:
        """Write ``data`` (bytes, str as UTF-8, or a binary file object,
        streamed) to ``path`` atomically; parents are created. ``mode`` is
        the permission bits (default 0o644)."""
        if isinstance(data, str):
            data = data.encode("utf-8")
        elif not isinstance(data, (bytes, bytearray)):
            data = _chunks(data)
        params = {"mode": f"{mode:04o}"} if mode is not None else None
        self._r._request("PUT", file_url_path(path), f"writing {path!r}", content=data, params=params,
                         headers={"Content-Type": "application/octet-stream"})

    def read(self, path: str) -> bytes:
        """The contents of ``path``."""
        return self._r._request("GET", file_url_path(path), f"reading {path!r}").content

    def read_text(self, path: str, encoding: str = "utf-8") -> str:
        return self.read(path).decode(encoding)

    def list(self, dir: str = ".") -> List[FileInfo]:
        """The entries of ``dir``, sorted by name (symlinks listed, not followed)."""
        resp = self._r._request("GET", "/files", f"listing {dir!r}", params={"dir": dir})
        return [FileInfo.from_json(d) for d in resp.json()]

    def remove(self, path: str, recursive: bool = False) -> None:
        """Remove a file or an empty directory; ``recursive`` removes a
        directory with its contents."""
        params = {"recursive": "true"} if recursive else None
        self._r._request("DELETE", file_url_path(path), f"removing {path!r}", params=params)

    def upload(self, local_path: str, path: str, mode: Optional[int] = None) -> None:
        """Copy a local file into the sandbox, streamed; ``mode`` defaults to
        the local file's permission bits."""
        if mode is None:
            mode = os.stat(local_path).st_mode & 0o777
        with open(local_path, "rb") as f:
            self.write(path, f, mode=mode)

    def download(self, path: str, local_path: str) -> None:
        """Copy a sandbox file to ``local_path``, streamed."""
        r = self._r
        headers = r._headers()
        what = f"reading {path!r}"
        try:
            with r._http.stream("GET", r.base_url + file_url_path(path), headers=headers) as resp:
                if resp.status_code >= 300:
                    resp.read()
                    raise r._fail(error_from_answer(resp.status_code, resp.content, what))
                tmp = local_path + ".part"
                try:
                    with open(tmp, "wb") as f:
                        for chunk in resp.iter_bytes():
                            f.write(chunk)
                    os.replace(tmp, local_path)
                except BaseException:
                    try:
                        os.remove(tmp)
                    except OSError:
                        pass
                    raise
        except httpx.TransportError as e:
            raise r._unreachable(what, e) from e


class AsyncRunner(_Base):
    """The same API as Runner on ``httpx.AsyncClient``: await ``run``,
    ``status`` and ``files.*``; ``async for`` over ``stream``."""

    def __init__(self, base_url: str, token: str, **kw: Any):
        super().__init__(base_url, token, **kw)
        self._http = httpx.AsyncClient(**self._client_kwargs())
        self.files = AsyncFiles(self)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> "AsyncRunner":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()

    async def _request(self, method: str, path: str, what: str, **kw: Any) -> httpx.Response:
        headers = self._headers(kw.pop("headers", None))
        try:
            resp = await self._http.request(method, self.base_url + path, headers=headers, **kw)
        except httpx.TransportError as e:
            raise self._unreachable(what, e) from e
        if resp.status_code >= 300:
            raise self._fail(error_from_answer(resp.status_code, resp.content, what))
        return resp

    async def status(self) -> Dict[str, Any]:
        return (await self._request("GET", "/status", "reading the runner's status")).json()

    async def run(self, cmd: Command, *, stdin: Optional[Union[str, bytes]] = None,
                  env: Optional[Mapping[str, str]] = None, cwd: Optional[str] = None,
                  timeout: Optional[float] = None, check: bool = False) -> Result:
        body = execute_body(cmd, stdin, env, cwd, timeout)
        resp = await self._request("POST", "/execute", "running a command", json=body,
                                   timeout=self._exec_timeout(timeout))
        try:
            res = Result.from_json(resp.json())
        except ValueError as e:
            raise errors.RunnerError(f"decoding the execute result: {e}") from e
        return check_result(res, cmd, check)

    async def stream(self, cmd: Command, *, stdin: Optional[Union[str, bytes]] = None,
                     env: Optional[Mapping[str, str]] = None, cwd: Optional[str] = None,
                     timeout: Optional[float] = None, check: bool = False) -> AsyncIterator[StreamEvent]:
        body = execute_body(cmd, stdin, env, cwd, timeout)
        what = "reading the output stream"
        headers = self._headers({"Accept": CONTENT_TYPE_NDJSON})
        exit_ev: Optional[ExitEvent] = None
        try:
            async with self._http.stream("POST", self.base_url + "/execute", json=body, headers=headers,
                                         timeout=self._exec_timeout(timeout)) as resp:
                if resp.status_code >= 300:
                    await resp.aread()
                    raise self._fail(error_from_answer(resp.status_code, resp.content, "running a command"))
                split = _LineSplitter()
                chunks = resp.aiter_bytes()
                async for chunk in chunks:
                    for ev in split.feed(chunk):
                        if isinstance(ev, ExitEvent):
                            exit_ev = ev
                            break
                        yield ev
                    if exit_ev is not None:
                        break
                else:
                    for ev in split.rest():
                        if isinstance(ev, ExitEvent):
                            exit_ev = ev
                            break
                        yield ev
                if exit_ev is not None:
                    # Read the end of the chunked body so that the
                    # connection is reused; the result is in hand, so a
                    # connection cut now loses nothing.
                    try:
                        async for _ in chunks:
                            pass
                    except httpx.TransportError:
                        pass
        except httpx.TransportError as e:
            raise self._unreachable(what, e) from e
        if exit_ev is not None:
            check_result(exit_ev.result, cmd, check)
            yield exit_ev
            return
        raise self._fail(errors.RunnerUnreachable(f"{what}: the stream ended without the command's result"))


class AsyncFiles:
    """Files, awaitable."""

    def __init__(self, runner: AsyncRunner):
        self._r = runner

    async def write(self, path: str, data: Union[bytes, str], mode: Optional[int] = None) -> None:
        if isinstance(data, str):
            data = data.encode("utf-8")
        params = {"mode": f"{mode:04o}"} if mode is not None else None
        await self._r._request("PUT", file_url_path(path), f"writing {path!r}", content=data, params=params,
                               headers={"Content-Type": "application/octet-stream"})

    async def read(self, path: str) -> bytes:
        return (await self._r._request("GET", file_url_path(path), f"reading {path!r}")).content

    async def read_text(self, path: str, encoding: str = "utf-8") -> str:
        return (await self.read(path)).decode(encoding)

    async def list(self, dir: str = ".") -> List[FileInfo]:
        resp = await self._r._request("GET", "/files", f"listing {dir!r}", params={"dir": dir})
        return [FileInfo.from_json(d) for d in resp.json()]

    async def remove(self, path: str, recursive: bool = False) -> None:
        params = {"recursive": "true"} if recursive else None
        await self._r._request("DELETE", file_url_path(path), f"removing {path!r}", params=params)
