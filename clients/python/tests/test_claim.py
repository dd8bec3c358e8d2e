"""The claim flow against a real kube-apiserver and the real claim
controller (tests/fixture): Sandbox.claim creates a SandboxClaim holding only
its token's digest, waits until it is Bound, talks to the bound runner with
the token, and deletes the claim when done; failures are typed."""

from __future__ import annotations

import asyncio
import datetime
import time

import pytest

from sandbox_injector import (AsyncSandbox, ClaimTimeout, Kube, NoSandboxAvailable, OutputEvent, PoolNotFound,
                              Sandbox, SandboxExpired, SandboxReleased, Unauthorized)
from sandbox_injector.runner import Runner


@pytest.fixture(scope="module")
def claims(apiserver):
    c = apiserver.info.get("claims")
    if not c:
        pytest.skip("the fixture runs no claim controller")
    return c


@pytest.fixture(scope="module")
def kube(apiserver):
    k = Kube(kubeconfig=apiserver.info["kubeconfig"])
    yield k
    k.close()


def claim(kube, claims, **kw):
    kw.setdefault("namespace", claims["namespace"])
    kw.setdefault("connect", "direct")  # the fixture's pods are on 127.0.0.1
    kw.setdefault("timeout", 60)
    return Sandbox.claim(kw.pop("pool", claims["pool"]), kube=kube, **kw)


def wait_for(what, check, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    pytest.fail(f"{what} within {timeout:g}s")


def test_claim_run_release(kube, claims):
    with claim(kube, claims, env={"FROM_CLAIM": "yes"}, lifetime=600) as sb:
        obj = kube.get_claim(sb.namespace, sb.name)
        spec = obj["spec"]
        # The claim holds the token's digest, never the token.
        assert sb.token not in str(obj)
        assert len(spec["auth"]["tokenSHA256"]) == 64
        assert spec["poolName"] == claims["pool"] and spec["activeDeadlineSeconds"] == 600
        assert obj["status"]["phase"] == "Bound" and sb.pod == obj["status"]["podName"]
        assert sb.expires_at is not None

        assert sb.run("echo $FROM_CLAIM").stdout == "yes\n"
        out = "".join(ev.data for ev in sb.stream("echo a; echo b") if isinstance(ev, OutputEvent))
        assert out == "a\nb\n"
        sb.files.write("f.txt", "x")
        assert sb.files.read_text("f.txt") == "x"

        # Only the claimant's token opens the runner.
        with Runner(sb.runner.base_url, "some-other-token-0123456789") as other:
            with pytest.raises(Unauthorized):
                other.run(["true"])
        name = sb.name
    assert kube.get_claim(claims["namespace"], name) is None
    with pytest.raises(SandboxReleased):
        sb.run(["true"])


def test_missing_pool(kube, claims):
    with pytest.raises(PoolNotFound) as ei:
        claim(kube, claims, pool="no-such-pool")
    assert ei.value.reason == "PoolNotFound"
    assert "no-such-pool" in str(ei.value) or "PoolNotFound" in str(ei.value)


def test_no_warm_pod_and_no_cold_start(kube, claims):
    with pytest.raises(NoSandboxAvailable) as ei:
        claim(kube, claims, pool=claims["empty_pool"], cold_start=False)
    assert ei.value.reason == "NoWarmPod"
    # The client deleted the failed claim.
    items = kube.custom.list_namespaced_custom_object("sandbox.io", "v1alpha1", claims["namespace"],
                                                      "sandboxclaims")["items"]
    assert [i["metadata"]["name"] for i in items if i["spec"]["poolName"] == claims["empty_pool"]] == []


def test_claim_timeout_deletes_the_claim(kube, claims):
    # A cold pod never becomes Ready here (no kubelet for it): the client
    # gives up after its timeout and deletes its claim.
    with pytest.raises(ClaimTimeout):
        claim(kube, claims, pool=claims["empty_pool"], timeout=3)
    items = kube.custom.list_namespaced_custom_object("sandbox.io", "v1alpha1", claims["namespace"],
                                                      "sandboxclaims")["items"]
    assert [i["metadata"]["name"] for i in items if i["spec"]["poolName"] == claims["empty_pool"]] == []


def test_extend(kube, claims):
    with claim(kube, claims, lifetime=60) as sb:
        first = sb.expires_at
        before = datetime.datetime.now(datetime.timezone.utc)
        new = sb.extend(540)
        assert new > first and (new - before).total_seconds() >= 539
        assert kube.get_claim(sb.namespace, sb.name)["spec"]["activeDeadlineSeconds"] >= 540
        assert sb.extend(10) == new  # never shortened
        wait_for("status.expiresAt to follow the extension",
                 lambda: (kube.get_claim(sb.namespace, sb.name)["status"].get("expiresAt") or "")
                 >= new.strftime("%Y-%m-%dT%H:%M:%S"))


def test_expiry_cuts_a_stream_and_says_expired(kube, claims):
    # The claim's end deletes the pod; its runner dies with it in the middle
    # of a stream. The client reports SandboxExpired, never a bare
    # protocol error, and later calls say the same.
    sb = claim(kube, claims, lifetime=3)
    try:
        events = sb.stream("echo started; sleep 120")
        assert next(events) == OutputEvent("stdout", "started\n")
        with pytest.raises(SandboxExpired) as ei:
            next(events)
        assert "expired" in str(ei.value)
        with pytest.raises(SandboxExpired):
            sb.run(["true"])
        with pytest.raises(SandboxExpired):
            sb.extend(10)
    finally:
        sb.release()


def test_async_claim(kube, claims):
    async def main():
        async with AsyncSandbox.claim(claims["pool"], namespace=claims["namespace"], kube=kube, connect="direct",
                                      timeout=60) as sb:
            assert (await sb.run(["echo", "async"])).stdout == "async\n"
            out = [ev.data async for ev in sb.stream("echo x") if isinstance(ev, OutputEvent)]
            assert out == ["x\n"]
            return sb.name

    name = asyncio.run(main())
    assert kube.get_claim(claims["namespace"], name) is None
