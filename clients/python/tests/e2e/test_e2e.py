"""End to end on the local cluster: claims of a busybox pool through the
Python client, run by the Go test TestPythonClient (e2e/inject), which makes
the namespace and pools and passes them in:

    KUBECONFIG                    the cluster's kubeconfig
    SANDBOX_PY_E2E_NAMESPACE      namespace of the pools
    SANDBOX_PY_E2E_POOL           a pool of the busybox image with warm pods
    SANDBOX_PY_E2E_EMPTY_POOL     a pool that keeps no warm pods

The sandbox image has no Python: the client is Python, the sandbox is not.
Each test takes its own claim with its own lifetime, so that one test's
expiry can never cut another's stream.
"""

from __future__ import annotations

import asyncio
import datetime
import hashlib
import os
import time

import pytest

from sandbox_injector import (AsyncSandbox, CommandNotFound, CommandTimedOut, ExitEvent, FileNotFound, Kube,
                              NoSandboxAvailable, OutputEvent, PoolNotFound, Sandbox, SandboxExpired,
                              SandboxReleased)

pytestmark = pytest.mark.e2e

NS = os.environ.get("SANDBOX_PY_E2E_NAMESPACE", "")
POOL = os.environ.get("SANDBOX_PY_E2E_POOL", "")
EMPTY_POOL = os.environ.get("SANDBOX_PY_E2E_EMPTY_POOL", "")

if not (NS and POOL and os.environ.get("KUBECONFIG")):
    pytest.skip("run by the Go test TestPythonClient (make e2e)", allow_module_level=True)

#: Long enough that no step of a test meets its claim's end.
LIFETIME = 600


@pytest.fixture(scope="module")
def kube():
    k = Kube()
    yield k
    k.close()


def wait_for(what, check, timeout=120.0):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception as e:  # noqa: BLE001 - reported at the deadline
            last = e
        time.sleep(0.5)
    pytest.fail(f"{what} within {timeout:g}s (last error: {last})")


def pod_gone(kube, ns, pod):
    from kubernetes import client as kclient
    from kubernetes.client.rest import ApiException

    try:
        kclient.CoreV1Api(kube.api).read_namespaced_pod(pod, ns)
        return False
    except ApiException as e:
        return e.status == 404


def collect(events):
    out, err, exits = [], [], []
    for ev in events:
        if isinstance(ev, OutputEvent):
            (out if ev.stream == "stdout" else err).append(ev.data)
        else:
            exits.append(ev)
    return "".join(out), "".join(err), exits


@pytest.mark.parametrize("connect", ["proxy", "direct"])
def test_claim_run_stream_files_release(kube, tmp_path, connect):
    with Sandbox.claim(POOL, namespace=NS, env={"FROM_CLAIM": "claimed value"}, lifetime=LIFETIME,
                       connect=connect, kube=kube) as sb:
        assert sb.connect == connect
        name, pod = sb.name, sb.pod

        # run: env of the claim and of the call, exit codes, stdin, cwd
        assert sb.run("echo $FROM_CLAIM").stdout == "claimed value\n"
        r = sb.run("echo out; echo err >&2; exit 3")
        assert (r.exit_code, r.stdout, r.stderr) == (3, "out\n", "err\n")
        assert sb.run(["sh", "-c", "echo $X"], env={"X": "per call"}).stdout == "per call\n"
        assert sb.run(["tr", "a-z", "A-Z"], stdin="shout\n").stdout == "SHOUT\n"
        sb.run("mkdir -p sub && echo in-sub > sub/f")
        assert sb.run(["cat", "f"], cwd="sub").stdout == "in-sub\n"
        with pytest.raises(CommandNotFound):
            sb.run(["no-such-command-here"])
        with pytest.raises(CommandTimedOut) as ei:
            sb.run("echo started; sleep 60", timeout=1)
        assert ei.value.result.stdout == "started\n"

        # stream: lines as they come (the command waits for a file the test
        # writes after seeing the first line), then 20 whole streams
        events = sb.stream("echo first; while [ ! -e gate ]; do sleep 0.05; done; echo second; echo e >&2; exit 4")
        assert next(events) == OutputEvent("stdout", "first\n")
        sb.files.write("gate", "")
        out, err, exits = collect(events)
        assert (out, err, [e.exit_code for e in exits]) == ("second\n", "e\n", [4])
        script = 'i=1; while [ $i -le 50 ]; do echo "line $i"; i=$((i+1)); sleep 0.01; done'
        want = "".join(f"line {i}\n" for i in range(1, 51))
        for i in range(20):
            out, _, exits = collect(sb.stream(script))
            assert out == want, f"stream {i}"
            assert [e.exit_code for e in exits] == [0], f"stream {i}"

        # files both ways
        sb.files.write("in/hello.txt", "hello from python\n")
        assert sb.run("tr a-z A-Z < in/hello.txt > in/upper.txt && cat in/upper.txt").stdout == "HELLO FROM PYTHON\n"
        assert sb.files.read_text("in/upper.txt") == "HELLO FROM PYTHON\n"
        assert [e.name for e in sb.files.list("in")] == ["hello.txt", "upper.txt"]
        blob = os.urandom(1 << 20)
        local = tmp_path / "blob"
        local.write_bytes(blob)
        sb.files.upload(str(local), "in/blob")
        assert sb.run("sha256sum in/blob").stdout.split()[0] == hashlib.sha256(blob).hexdigest()
        back = tmp_path / "back"
        sb.files.download("in/blob", str(back))
        assert back.read_bytes() == blob
        sb.files.remove("in", recursive=True)
        with pytest.raises(FileNotFound):
            sb.files.read("in/hello.txt")

    # leaving the block released the claim: the claim and its pod go
    assert kube.get_claim(NS, name) is None
    wait_for(f"pod {NS}/{pod} deleted after release", lambda: pod_gone(kube, NS, pod))
    with pytest.raises(SandboxReleased):
        sb.run(["true"])


def test_expiry_and_extend(kube):
    # A claim extended before its end outlives its first lifetime.
    with Sandbox.claim(POOL, namespace=NS, lifetime=5, kube=kube) as sb:
        first = sb.expires_at
        before = datetime.datetime.now(datetime.timezone.utc)
        new = sb.extend(LIFETIME)
        assert first is not None and new is not None and (new - before).total_seconds() >= LIFETIME - 1
        time.sleep(8)
        assert sb.run(["echo", "still here"]).stdout == "still here\n"

    # A claim left alone expires: its pod is deleted, the claim says
    # Expired, and the client says so.
    sb = Sandbox.claim(POOL, namespace=NS, lifetime=3, kube=kube)
    try:
        assert sb.run(["true"]).exit_code == 0
        wait_for("the claim to expire",
                 lambda: ((kube.get_claim(NS, sb.name) or {}).get("status") or {}).get("phase") == "Expired")
        wait_for(f"pod {sb.pod} deleted at expiry", lambda: pod_gone(kube, NS, sb.pod))
        with pytest.raises(SandboxExpired):
            sb.run(["true"])
        with pytest.raises(SandboxExpired):
            sb.extend(60)
    finally:
        sb.release()


def test_claim_errors(kube):
    with pytest.raises(PoolNotFound):
        Sandbox.claim("no-such-pool", namespace=NS, kube=kube, timeout=60)
    if EMPTY_POOL:
        with pytest.raises(NoSandboxAvailable):
            Sandbox.claim(EMPTY_POOL, namespace=NS, cold_start=False, kube=kube, timeout=60)


def test_async(kube):
    async def main():
        async with AsyncSandbox.claim(POOL, namespace=NS, lifetime=LIFETIME, kube=kube) as sb:
            assert (await sb.run("echo async")).stdout == "async\n"
            events = [ev async for ev in sb.stream("echo a; echo b >&2")]
            assert isinstance(events[-1], ExitEvent) and events[-1].exit_code == 0
            await sb.files.write("x.txt", "async file")
            assert await sb.files.read_text("x.txt") == "async file"
            return sb.name

    name = asyncio.run(main())
    assert kube.get_claim(NS, name) is None
