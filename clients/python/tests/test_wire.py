"""Pure parts of the client: request bodies, NDJSON splitting, error mapping."""

from __future__ import annotations

import json

import pytest

from sandbox_injector import (ExitEvent, FileNotFound, InvalidRequest, OutputEvent, RunnerBusy, RunnerError,
                              RunnerUnreachable, Unauthorized)
from sandbox_injector.runner import _LineSplitter, error_from_answer, execute_body, file_url_path


def test_execute_body():
    assert execute_body("echo hi") == {"shell": "echo hi"}
    assert execute_body(["echo", 1]) == {"argv": ["echo", "1"]}
    assert execute_body(("a",), stdin=b"in", env={"K": 1}, cwd="d", timeout=1.5) == {
        "argv": ["a"], "stdin": "in", "env": {"K": "1"}, "cwd": "d", "timeout_ms": 1500}
    for bad in ("", [], [""]):
        with pytest.raises(ValueError):
            execute_body(bad)
    with pytest.raises(ValueError):
        execute_body("x", timeout=0)


def test_file_url_path():
    assert file_url_path("a b/c#d") == "/files/a%20b/c%23d"
    for bad in ("", ".", "/", "/etc/passwd", "../x", "a/../../b"):
        with pytest.raises(InvalidRequest):
            file_url_path(bad)


def test_line_splitter_across_chunks():
    lines = [json.dumps({"stream": "stdout", "data": "héllo\n"}).encode(),
             json.dumps({"stream": "stderr", "data": "x"}).encode(),
             json.dumps({"exit_code": 3, "stdout": "", "stderr": "", "duration_ms": 1.5, "timed_out": False,
                         "truncated": False}).encode()]
    raw = b"\n".join(lines) + b"\n"
    for size in (1, 2, 7, len(raw)):
        sp = _LineSplitter()
        evs = []
        for i in range(0, len(raw), size):
            evs += sp.feed(raw[i:i + size])
        evs += sp.rest()
        assert evs[:2] == [OutputEvent("stdout", "héllo\n"), OutputEvent("stderr", "x")]
        assert isinstance(evs[2], ExitEvent) and evs[2].exit_code == 3 and len(evs) == 3


def test_line_splitter_refuses_garbage():
    with pytest.raises(RunnerError):
        _LineSplitter().feed(b"<html>\n")


@pytest.mark.parametrize("status,body,cls", [
    (401, b'{"error":"invalid bearer token"}\n', Unauthorized),
    (404, b'{"error":"opening \\"x\\": file does not exist"}', FileNotFound),
    (400, b'{"error":"cwd: invalid path"}', InvalidRequest),
    (422, b'{"error":"shell requests need /bin/sh"}', InvalidRequest),
    (429, b'{"error":"too many concurrent executions"}', RunnerBusy),
    (409, b'{"error":"already claimed"}', RunnerError),
    # The API server's own answers for the pod: gone, or not reachable.
    (404, b'{"kind":"Status","apiVersion":"v1","status":"Failure","message":"pods \\"p\\" not found","code":404}',
     RunnerUnreachable),
    (503, b'{"kind":"Status","message":"error trying to reach service: dial tcp: connection refused","code":503}',
     RunnerUnreachable),
    (403, b'{"kind":"Status","message":"pods \\"p\\" is forbidden: cannot create resource \\"pods/proxy\\"",'
          b'"code":403}', Unauthorized),
    (502, b"Bad Gateway", RunnerUnreachable),
])
def test_error_from_answer(status, body, cls):
    err = error_from_answer(status, body, "doing it")
    assert type(err) is cls
    assert err.status_code == status
    assert str(err).startswith(f"doing it: {status}: ")
    msg = json.loads(body).get("error") or json.loads(body).get("message") if body.startswith(b"{") else "Bad Gateway"
    assert msg in str(err)
