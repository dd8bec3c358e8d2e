"""The runner through the real kube-apiserver's pod proxy
(pods/NAME:PORT/proxy): the token in X-Sandbox-Token, the user's
credentials from the kubeconfig, and streams that arrive whole, many times."""

from __future__ import annotations

import pytest

from sandbox_injector import (CommandNotFound, FileNotFound, Kube, OutputEvent, Runner, RunnerUnreachable,
                              Unauthorized)
from test_runner import STREAM_ERR, STREAM_OUT, STREAM_SCRIPT, collect


@pytest.fixture(scope="module")
def kube(apiserver):
    k = Kube(kubeconfig=apiserver.info["kubeconfig"])
    yield k
    k.close()


def proxied(kube, info, i=0, token=None, **kw):
    r = info["proxied"][i]
    verify, cert = kube.proxy_tls()
    kw.setdefault("http2", True)
    return Runner(kube.proxy_url(info["namespace"], r["pod"], r["port"]), token or r["token"], via_proxy=True,
                  headers=kube.proxy_headers, verify=verify, cert=cert, **kw)


def test_sandboxes_use_http2_to_the_api_server():
    # Over HTTP/1.1 the API server's pod proxy cuts streams now and then
    # (reproduced against the real kube-apiserver in this fixture: the
    # stream test below fails within a few dozen streams with http2=False).
    from sandbox_injector import sandbox

    assert sandbox.HTTP2, "the h2 package is missing: make python-env installs python3-h2"


def test_run_through_the_pod_proxy(apiserver, kube):
    with proxied(kube, apiserver.info) as r:
        res = r.run("echo out; echo err >&2; exit 3", env={"A": "b"})
        assert (res.exit_code, res.stdout, res.stderr) == (3, "out\n", "err\n")
        assert r.run("echo $A", env={"A": "through the proxy"}).stdout == "through the proxy\n"
        with pytest.raises(CommandNotFound):
            r.run(["no-such-command-here"])


def test_stream_through_the_pod_proxy_50_times(apiserver, kube):
    with proxied(kube, apiserver.info) as r:
        for i in range(50):
            out, err, exits = collect(r.stream(STREAM_SCRIPT))
            assert (out, err) == (STREAM_OUT, STREAM_ERR), f"stream {i}"
            assert [e.exit_code for e in exits] == [7], f"stream {i}"


def test_stream_through_the_pod_proxy_arrives_as_written(apiserver, kube):
    # The proxy must flush each line: the command waits for a file that the
    # test writes only after it has seen the first line.
    info = apiserver.info
    gate = "gate-%d" % id(kube)
    with proxied(kube, info) as r:
        events = r.stream(f"echo first; while [ ! -e {gate} ]; do sleep 0.01; done; echo second")
        assert next(events) == OutputEvent("stdout", "first\n")
        r.files.write(gate, "")
        out, _, exits = collect(events)
        assert out == "second\n" and exits[0].exit_code == 0


def test_large_stream_and_files_through_the_pod_proxy(apiserver, kube):
    with proxied(kube, apiserver.info) as r:
        out, _, exits = collect(r.stream("i=0; while [ $i -lt 2000 ]; do echo line-$i-padding-padding-padding; i=$((i+1)); done"))
        assert exits[0].exit_code == 0
        assert out.splitlines() == [f"line-{i}-padding-padding-padding" for i in range(2000)]
        data = bytes(range(256)) * 4096
        r.files.write("dir/blob", data, mode=0o600)
        assert r.files.read("dir/blob") == data
        assert [(e.name, e.size, e.mode) for e in r.files.list("dir")] == [("blob", len(data), "0600")]
        r.files.remove("dir", recursive=True)
        with pytest.raises(FileNotFound):
            r.files.read("dir/blob")


def test_wrong_token_through_the_pod_proxy(apiserver, kube):
    with proxied(kube, apiserver.info, token="not-the-token-0123456789") as r:
        with pytest.raises(Unauthorized) as ei:
            r.run(["true"])
    assert "invalid bearer token" in str(ei.value)


def test_missing_pod_through_the_pod_proxy_is_unreachable(apiserver, kube):
    info = dict(apiserver.info)
    info["proxied"] = [dict(info["proxied"][0], pod="no-such-pod")]
    with proxied(kube, info) as r:
        with pytest.raises(RunnerUnreachable) as ei:
            r.run(["true"])
    assert ei.value.status_code == 404
    assert "no-such-pod" in str(ei.value)
