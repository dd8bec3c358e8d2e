"""The Go fixture (tests/fixture): a real kube-apiserver with the chart's
CRDs, runners behind Pod objects reachable through the API server's pod
proxy, and (once there) the claim controller. Started once per test run."""

from __future__ import annotations

import collections
import json
import os
import subprocess
import threading
from pathlib import Path
from typing import Any, Deque, Dict, Optional

import pytest

from conftest import repo_root


class Fixture:
    def __init__(self, binary: Path, workdir: Path):
        env = dict(os.environ, SANDBOX_PY_FIXTURE="1")
        env.setdefault("KUBEBUILDER_ASSETS", str(repo_root() / "bin"))
        self.log: Deque[str] = collections.deque(maxlen=500)
        self.proc = subprocess.Popen([str(binary), "-test.run", "^TestFixture$", "-test.v", "-test.timeout", "2h"],
                                     cwd=repo_root() / "clients" / "python" / "tests" / "fixture",
                                     env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        self.info: Optional[Dict[str, Any]] = None
        ready = threading.Event()

        def read() -> None:
            assert self.proc.stdout is not None
            for line in self.proc.stdout:
                self.log.append(line.rstrip("\n"))
                if line.startswith("FIXTURE ") and self.info is None:
                    self.info = json.loads(line[len("FIXTURE "):])
                    ready.set()
            ready.set()

        threading.Thread(target=read, daemon=True).start()
        ready.wait(timeout=300)
        if self.info is None:
            self.stop()
            text = "\n".join(list(self.log)[-60:])
            if "SKIPPING" in text or "--- SKIP" in text:
                if os.environ.get("CI"):
                    pytest.fail("the claim fixture skipped under CI:\n" + text)
                pytest.skip("the API server fixture skipped (kube-apiserver and etcd missing?):\n" + text)
            pytest.fail("the API server fixture did not start:\n" + text)

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.close()  # the fixture stops and cleans up
                self.proc.wait(timeout=90)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)


def build_fixture(out: Path) -> Path:
    r = subprocess.run(["go", "test", "-c", "-o", str(out), "./clients/python/tests/fixture"], cwd=repo_root(),
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.fail(f"building the API server fixture: exit {r.returncode}\n{r.stderr}")
    return out
