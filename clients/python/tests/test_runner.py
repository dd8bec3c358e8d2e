"""Runner client against a real sandbox-runner process: commands, streams,
files and the typed errors, with the runner's own messages."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time

import pytest

from sandbox_injector import (AsyncRunner, CommandFailed, CommandNotFound, CommandTimedOut, ExitEvent, FileNotFound,
                              InvalidRequest, OutputEvent, Runner, RunnerUnreachable, Unauthorized)


def test_run_argv_and_shell(runner):
    r = runner.run(["echo", "hello", "world"])
    assert (r.exit_code, r.stdout, r.stderr) == (0, "hello world\n", "")
    assert r.ok

    r = runner.run("echo out; echo err >&2; exit 3")
    assert (r.exit_code, r.stdout, r.stderr) == (3, "out\n", "err\n")
    assert not r.ok


def test_run_stdin_env_cwd(runner, runner_proc):
    (runner_proc.workdir / "sub").mkdir()
    r = runner.run("cat; echo \"[$GREETING]\"; pwd", stdin="from stdin\n", env={"GREETING": "hi there"}, cwd="sub")
    assert r.stdout == f"from stdin\n[hi there]\n{runner_proc.workdir / 'sub'}\n"


def test_run_check_raises_on_non_zero_exit(runner):
    with pytest.raises(CommandFailed) as ei:
        runner.run("echo boom >&2; exit 4", check=True)
    assert ei.value.result.exit_code == 4
    assert "boom" in str(ei.value)


def test_run_command_not_found(runner):
    with pytest.raises(CommandNotFound) as ei:
        runner.run(["no-such-command-here", "x"])
    assert ei.value.result.exit_code == 127
    assert "no-such-command-here: command not found" in str(ei.value)


def test_run_timeout_kills_and_keeps_output(runner):
    with pytest.raises(CommandTimedOut) as ei:
        runner.run("echo started; sleep 60", timeout=0.5)
    res = ei.value.result
    assert res.timed_out
    assert res.stdout == "started\n"
    assert res.exit_code == 128 + 9


def test_run_bad_cwd_is_refused_with_the_runners_message(runner):
    with pytest.raises(InvalidRequest) as ei:
        runner.run(["true"], cwd="../outside")
    assert ei.value.status_code == 400
    assert '".." is not allowed' in str(ei.value)


def test_wrong_token_is_unauthorized(runner_proc):
    with runner_proc.client(token="wrong-token-0123456789") as r:
        with pytest.raises(Unauthorized) as ei:
            r.run(["true"])
    assert ei.value.status_code == 401
    assert "invalid bearer token" in str(ei.value)


def test_token_in_x_sandbox_token_as_through_the_pod_proxy(runner_proc):
    # Through the API server's pod proxy Authorization carries the user's
    # Kubernetes credentials; the sandbox token goes in X-Sandbox-Token.
    with runner_proc.client(via_proxy=True, headers=lambda: {"Authorization": "Bearer kube-credential"}) as r:
        assert r.run(["echo", "ok"]).stdout == "ok\n"


def test_unreachable_runner():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    with Runner(f"http://127.0.0.1:{port}", "t" * 32) as r:
        with pytest.raises(RunnerUnreachable) as ei:
            r.run(["true"])
    assert "running a command" in str(ei.value)


def collect(events):
    out, err, exits = [], [], []
    for ev in events:
        if isinstance(ev, OutputEvent):
            (out if ev.stream == "stdout" else err).append(ev.data)
        else:
            assert isinstance(ev, ExitEvent)
            exits.append(ev)
    return "".join(out), "".join(err), exits


def test_stream_yields_output_as_it_arrives(runner, runner_proc):
    # The command waits for a file the test writes only after it has seen
    # the first line: that line cannot have come from a buffered answer.
    gate = runner_proc.workdir / "gate"
    events = runner.stream(f"echo first; while [ ! -e {gate} ]; do sleep 0.01; done; echo second; echo err >&2")
    first = next(events)
    assert first == OutputEvent("stdout", "first\n")
    gate.write_text("")
    out, err, exits = collect(events)
    assert (out, err) == ("second\n", "err\n")
    assert len(exits) == 1 and exits[0].exit_code == 0
    assert exits[0].result.stdout == ""  # streamed, not repeated


STREAM_SCRIPT = 'for i in $(seq 1 20); do echo "line $i"; echo "err $i" >&2; sleep 0.005; done; exit 7'
STREAM_OUT = "".join(f"line {i}\n" for i in range(1, 21))
STREAM_ERR = "".join(f"err {i}\n" for i in range(1, 21))


def test_stream_50_times_complete_and_in_order(runner):
    # The stream must never end early or lose a line: 50 streams over one
    # client (so kept-alive connections are reused between them).
    for i in range(50):
        out, err, exits = collect(runner.stream(STREAM_SCRIPT))
        assert (out, err) == (STREAM_OUT, STREAM_ERR), f"stream {i}"
        assert [e.exit_code for e in exits] == [7], f"stream {i}"


def test_stream_large_output(runner):
    # 8 MiB in lines of 1 KiB, past the JSON answer's 1 MiB cap: streamed
    # answers are not capped, and every byte arrives.
    out, _, exits = collect(runner.stream("head -c 8388608 /dev/zero | tr '\\0' 'x' | fold -w 1023"))
    assert exits[0].exit_code == 0
    lines = out.split("\n")
    assert len(out) - len(lines) + 1 == 8 * 1024 * 1024
    assert set(lines[:-1]) == {"x" * 1023} and set(lines[-1]) == {"x"}


def test_stream_errors(runner):
    with pytest.raises(CommandNotFound):
        list(runner.stream(["no-such-command-here"]))
    seen = []
    with pytest.raises(CommandTimedOut) as ei:
        for ev in runner.stream("echo before; sleep 60", timeout=0.5):
            seen.append(ev)
    assert seen == [OutputEvent("stdout", "before\n")]
    assert ei.value.result.timed_out


def test_stream_cut_by_the_runner_dying_is_loud(runner, runner_proc):
    # A stream that breaks mid-way raises RunnerUnreachable; it never just
    # ends as if the command had finished.
    events = runner.stream("echo up; sleep 60")
    assert next(events) == OutputEvent("stdout", "up\n")
    runner_proc.proc.kill()
    with pytest.raises(RunnerUnreachable) as ei:
        next(events)
    assert "reading the output stream" in str(ei.value)


def test_stream_left_early_kills_the_command(runner, runner_proc):
    events = runner.stream("echo $$ > pid; echo go; sleep 60")
    assert next(events) == OutputEvent("stdout", "go\n")
    events.close()
    pid = int((runner_proc.workdir / "pid").read_text())
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        st = runner.status()
        if st["executions"] == 0:
            break
        time.sleep(0.05)
    assert runner.status()["executions"] == 0
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_files_round_trip(runner, runner_proc):
    runner.files.write("dir/sub/a.txt", "héllo\n")
    runner.files.write("bin.dat", bytes(range(256)), mode=0o600)
    runner.files.write("run.sh", "#!/bin/sh\necho ran\n", mode=0o755)
    assert runner.files.read_text("dir/sub/a.txt") == "héllo\n"
    assert runner.files.read("bin.dat") == bytes(range(256))
    assert runner.run(["./run.sh"]).stdout == "ran\n"

    entries = {e.name: e for e in runner.files.list()}
    assert set(entries) == {"bin.dat", "dir", "run.sh"}
    assert entries["bin.dat"].size == 256 and entries["bin.dat"].mode == "0600" and not entries["bin.dat"].dir
    assert entries["run.sh"].mode == "0755"
    assert entries["dir"].dir and entries["dir"].mtime is not None
    assert [e.name for e in runner.files.list("dir/sub")] == ["a.txt"]

    runner.files.remove("bin.dat")
    with pytest.raises(FileNotFound) as ei:
        runner.files.read("bin.dat")
    assert ei.value.status_code == 404
    with pytest.raises(Exception) as ei:
        runner.files.remove("dir")  # not empty
    assert ei.value.status_code == 409
    runner.files.remove("dir", recursive=True)
    assert [e.name for e in runner.files.list()] == ["run.sh"]


def test_files_names_are_escaped(runner, runner_proc):
    name = "with space/#hash?q=1&x%20.txt"
    runner.files.write(name, "odd")
    assert (runner_proc.workdir / name).read_text() == "odd"
    assert runner.files.read_text(name) == "odd"


def test_files_paths_outside_are_refused(runner):
    for p in ("/etc/passwd", "../x", "a/../../x"):
        with pytest.raises(InvalidRequest):
            runner.files.read(p)


def test_upload_download_stream_large_files(runner, tmp_path):
    src = tmp_path / "big.bin"
    data = os.urandom(3 * 1024 * 1024 + 17)
    src.write_bytes(data)
    os.chmod(src, 0o640)
    runner.files.upload(str(src), "in/big.bin")
    assert runner.run("sha256sum in/big.bin | cut -c1-64").stdout.strip() == __import__("hashlib").sha256(data).hexdigest()
    assert {e.name: e.mode for e in runner.files.list("in")} == {"big.bin": "0640"}
    dst = tmp_path / "back.bin"
    runner.files.download("in/big.bin", str(dst))
    assert dst.read_bytes() == data
    with pytest.raises(FileNotFound):
        runner.files.download("missing", str(tmp_path / "nothing"))
    assert not (tmp_path / "nothing").exists()


def test_concurrent_runs_on_one_client(runner):
    results = {}

    def work(i):
        results[i] = runner.run(["sh", "-c", f"sleep 0.1; echo {i}"]).stdout

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert results == {i: f"{i}\n" for i in range(8)}


def test_async_runner(runner_proc):
    async def main():
        async with AsyncRunner(runner_proc.url, runner_proc.token) as r:
            res = await r.run("echo $X", env={"X": "async"})
            assert res.stdout == "async\n"
            outs = await asyncio.gather(*(r.run(["echo", str(i)]) for i in range(5)))
            assert [o.stdout for o in outs] == [f"{i}\n" for i in range(5)]
            for _ in range(10):
                events = [ev async for ev in r.stream(STREAM_SCRIPT)]
                out = "".join(e.data for e in events if isinstance(e, OutputEvent) and e.stream == "stdout")
                assert out == STREAM_OUT
                assert isinstance(events[-1], ExitEvent) and events[-1].exit_code == 7
            await r.files.write("a/b.txt", "async file")
            assert await r.files.read_text("a/b.txt") == "async file"
            assert [e.name for e in await r.files.list("a")] == ["b.txt"]
            await r.files.remove("a", recursive=True)
            with pytest.raises(FileNotFound):
                await r.files.read("a/b.txt")
            with pytest.raises(CommandNotFound):
                await r.run(["no-such-command-here"])

    asyncio.run(main())
