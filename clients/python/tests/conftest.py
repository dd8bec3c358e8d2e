"""Fixtures: a real sandbox-runner binary, built from this repository and
started on a free loopback port with a token file, for every test that
needs one."""

from __future__ import annotations

import json
import os
import queue
import secrets
import shutil
import subprocess
import threading
from pathlib import Path
from typing import Iterator, List, Optional

import pytest

from sandbox_injector import Runner


def repo_root() -> Path:
    p = Path(__file__).resolve()
    for d in p.parents:
        if (d / "go.mod").exists() and (d / "cmd" / "sandbox-runner").is_dir():
            return d
    raise RuntimeError("the repository root (go.mod) is not above the tests")


def go_build(pkg: str, out: Path, tags: Optional[str] = None) -> Path:
    """go build a package of this repository into out (static)."""
    go = shutil.which("go")
    if go is None:
        pytest.fail("go is not on PATH: the tests build the real runner from the repository")
    cmd = [go, "build", "-trimpath", "-o", str(out)]
    if tags:
        cmd += ["-tags", tags]
    cmd.append(pkg)
    env = dict(os.environ, CGO_ENABLED="0")
    r = subprocess.run(cmd, cwd=repo_root(), env=env, capture_output=True, text=True)
    if r.returncode != 0:
        pytest.fail(f"go build {pkg}: exit {r.returncode}\n{r.stderr}")
    return out


@pytest.fixture(scope="session")
def runner_bin(tmp_path_factory) -> Path:
    """The sandbox-runner binary: $SANDBOX_RUNNER_BIN, else built once per run
    (with the shipped build tags, make/30-runner.mk)."""
    given = os.environ.get("SANDBOX_RUNNER_BIN")
    if given:
        return Path(given)
    return go_build("./cmd/sandbox-runner", tmp_path_factory.mktemp("bin") / "sandbox-runner",
                    tags="nethttpomithttp2")


class RunnerProc:
    """A started runner: its address, token, work directory and log."""

    def __init__(self, bin: Path, tmp: Path, token: Optional[str], args: List[str]):
        self.token = token or ""
        self.workdir = tmp / "work"
        self.workdir.mkdir()
        argv = [str(bin), "run", "--listen", "127.0.0.1:0", "--workdir", str(self.workdir)]
        if token is not None:
            tf = tmp / "token"
            tf.write_text(token)
            argv += ["--token-file", str(tf)]
        argv += args
        self.log: List[str] = []
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        addr: "queue.Queue[str]" = queue.Queue()
        threading.Thread(target=self._read_log, args=(addr,), daemon=True).start()
        try:
            self.addr = addr.get(timeout=60)
        except queue.Empty:
            self.stop()
            pytest.fail("the runner did not log its address within 60s:\n" + "\n".join(self.log))
        if not self.addr:
            self.stop()
            pytest.fail("the runner exited before serving:\n" + "\n".join(self.log))
        self.url = f"http://{self.addr}"

    def _read_log(self, addr: "queue.Queue[str]") -> None:
        sent = False
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.log.append(line.rstrip("\n"))
            if not sent:
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue
                if rec.get("msg") == "serving":
                    addr.put(rec["addr"])
                    sent = True
        if not sent:
            addr.put("")

    def client(self, **kw) -> Runner:
        return Runner(self.url, kw.pop("token", self.token), **kw)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=60)


@pytest.fixture
def start_runner(runner_bin, tmp_path_factory) -> Iterator:
    """start_runner(token=..., args=[...]) starts one more runner for the test."""
    started: List[RunnerProc] = []

    def start(token: Optional[str] = None, args: Optional[List[str]] = None) -> RunnerProc:
        if token is None:
            token = secrets.token_urlsafe(32)
        p = RunnerProc(runner_bin, tmp_path_factory.mktemp("runner"), token, args or [])
        started.append(p)
        return p

    yield start
    for p in started:
        p.stop()


@pytest.fixture
def runner_proc(start_runner) -> RunnerProc:
    return start_runner()


@pytest.fixture
def runner(runner_proc) -> Iterator[Runner]:
    with runner_proc.client() as r:
        yield r


@pytest.fixture(scope="session")
def apiserver(tmp_path_factory):
    """The Go fixture: a real kube-apiserver (envtest) whose pod proxy reaches
    runners on loopback, and its connection details (``.info``)."""
    from apiserver import Fixture, build_fixture

    binary = build_fixture(tmp_path_factory.mktemp("fixture") / "fixture.test")
    f = Fixture(binary, tmp_path_factory.mktemp("fixture-run"))
    yield f
    f.stop()
