"""The Kubernetes side: credentials (kubeconfig or in-cluster) and the
SandboxClaim calls (create, wait until bound, extend, delete).

Only the official ``kubernetes`` client is used for the API; the pod proxy is
reached with httpx using the same credentials (``proxy_*`` below).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import os
import secrets
import ssl
import time
from typing import Any, Dict, Mapping, Optional, Tuple, Union

from kubernetes import client as kclient
from kubernetes import config as kconfig
from kubernetes import watch as kwatch
from kubernetes.client.rest import ApiException

from . import errors
from .types import _parse_time

GROUP = "sandbox.io"
VERSION = "v1alpha1"
PLURAL = "sandboxclaims"

_SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"

#: Condition reasons of a failed claim and the error each one raises.
FAILED_REASONS = {
    "NoWarmPod": errors.NoSandboxAvailable,
    "PoolNotFound": errors.PoolNotFound,
    "Expired": errors.SandboxExpired,
}


def new_token() -> Tuple[str, str]:
    """A fresh random token (32 bytes, URL-safe) and its SHA-256 in
    lower-case hex, which is all the claim ever holds."""
    token = secrets.token_urlsafe(32)
    return token, hashlib.sha256(token.encode("ascii")).hexdigest()


def in_cluster_available() -> bool:
    return bool(os.environ.get("KUBERNETES_SERVICE_HOST")) and os.path.exists(os.path.join(_SA_DIR, "token"))


class Kube:
    """API client and defaults from a kubeconfig or the pod's service account.

    ``in_cluster=None`` chooses: the service account when running in a pod
    and no kubeconfig was named, else the kubeconfig (``$KUBECONFIG`` or
    ``~/.kube/config``)."""

    def __init__(self, kubeconfig: Optional[str] = None, context: Optional[str] = None,
                 in_cluster: Optional[bool] = None):
        if in_cluster is None:
            in_cluster = kubeconfig is None and context is None and in_cluster_available()
        self.in_cluster = in_cluster
        self.config = kclient.Configuration()
        self.default_namespace = "default"
        try:
            if in_cluster:
                kconfig.load_incluster_config(client_configuration=self.config)
                try:
                    with open(os.path.join(_SA_DIR, "namespace")) as f:
                        self.default_namespace = f.read().strip() or "default"
                except OSError:
                    pass
            else:
                kconfig.load_kube_config(config_file=kubeconfig, context=context,
                                         client_configuration=self.config, persist_config=False)
                contexts, active = kconfig.list_kube_config_contexts(config_file=kubeconfig)
                if context:
                    active = next((c for c in contexts if c.get("name") == context), active)
                ns = ((active or {}).get("context") or {}).get("namespace")
                if ns:
                    self.default_namespace = ns
        except (kconfig.ConfigException, OSError) as e:
            where = "the pod's service account" if in_cluster else f"kubeconfig {kubeconfig or '(default)'}"
            raise errors.SandboxError(f"loading Kubernetes credentials from {where}: {e}") from e
        self._ssl: Optional[ssl.SSLContext] = None
        self.api = kclient.ApiClient(self.config)
        self.custom = kclient.CustomObjectsApi(self.api)

    def close(self) -> None:
        try:
            self.api.close()
        except Exception:  # noqa: BLE001 - closing a pool must not mask the real error
            pass

    # --- the pod proxy, with the same credentials -------------------------

    def proxy_url(self, namespace: str, pod: str, port: int) -> str:
        return f"{self.config.host.rstrip('/')}/api/v1/namespaces/{namespace}/pods/{pod}:{port}/proxy"

    def proxy_headers(self) -> Dict[str, str]:
        auth = self.config.get_api_key_with_prefix("authorization")
        return {"Authorization": auth} if auth else {}

    def proxy_tls(self) -> Tuple[Union[bool, ssl.SSLContext], None]:
        """TLS settings for httpx from the kubeconfig: an SSLContext with its
        CA and client certificate (httpx's own path arguments are deprecated
        in newer versions), or False for insecure-skip-tls-verify."""
        if not self.config.verify_ssl:
            return False, None
        if self._ssl is None:
            ctx = ssl.create_default_context(cafile=self.config.ssl_ca_cert or None)
            if self.config.cert_file and self.config.key_file:
                ctx.load_cert_chain(self.config.cert_file, self.config.key_file)
            self._ssl = ctx
        return self._ssl, None

    # --- SandboxClaims --------------------------------------------------------

    def create_claim(self, namespace: str, pool: str, token_sha256: str, env: Optional[Mapping[str, str]],
                     lifetime: Optional[int], cold_start: bool, name: Optional[str] = None) -> Dict[str, Any]:
        meta: Dict[str, Any] = {"name": name} if name else {"generateName": f"{pool}-"}
        spec: Dict[str, Any] = {
            "poolName": pool,
            "coldStart": "Allow" if cold_start else "Never",
            "auth": {"tokenSHA256": token_sha256},
        }
        if env:
            spec["env"] = [{"name": str(k), "value": str(v)} for k, v in env.items()]
        if lifetime is not None:
            spec["activeDeadlineSeconds"] = int(lifetime)
        body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "SandboxClaim", "metadata": meta, "spec": spec}
        try:
            return self.custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)
        except ApiException as e:
            raise api_error(f"creating a SandboxClaim of pool {pool!r} in namespace {namespace!r}", e) from e

    def get_claim(self, namespace: str, name: str) -> Optional[Dict[str, Any]]:
        """The claim, or None when it does not exist."""
        try:
            return self.custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
        except ApiException as e:
            if e.status == 404:
                return None
            raise api_error(f"reading SandboxClaim {namespace}/{name}", e) from e

    def delete_claim(self, namespace: str, name: str) -> None:
        """Delete the claim (which releases its sandbox); gone already is fine."""
        try:
            self.custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name,
                                                        propagation_policy="Background")
        except ApiException as e:
            if e.status != 404:
                raise api_error(f"deleting SandboxClaim {namespace}/{name}", e) from e

    def patch_claim(self, namespace: str, name: str, patch: Dict[str, Any]) -> Dict[str, Any]:
        """A JSON merge patch of the claim (the content type is set here, so
        that it does not depend on the kubernetes client's version)."""
        path = f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{PLURAL}/{name}"
        try:
            return self.api.call_api(path, "PATCH", {}, [], {"Content-Type": "application/merge-patch+json",
                                                             "Accept": "application/json"},
                                     body=patch, response_type="object", auth_settings=["BearerToken"],
                                     _return_http_data_only=True)
        except ApiException as e:
            raise api_error(f"updating SandboxClaim {namespace}/{name}", e) from e

    def wait_bound(self, namespace: str, name: str, resource_version: Optional[str], timeout: float) -> Dict[str, Any]:
        """Watch the claim until it is Bound (returned) or Failed / Expired /
        deleted (raised as the matching error), for at most ``timeout``
        seconds (then ClaimTimeout)."""
        deadline = time.monotonic() + timeout
        rv = resource_version
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                obj = self.get_claim(namespace, name)
                if obj is not None and bound(obj, namespace, name):
                    return obj
                phase = ((obj or {}).get("status") or {}).get("phase") or "Pending"
                raise errors.ClaimTimeout(f"SandboxClaim {namespace}/{name} is still {phase} after {timeout:g}s"
                                          f"{condition_text(obj)}", reason="Timeout")
            w = kwatch.Watch()
            try:
                for ev in w.stream(self.custom.list_namespaced_custom_object, GROUP, VERSION, namespace, PLURAL,
                                   field_selector=f"metadata.name={name}", resource_version=rv,
                                   timeout_seconds=max(1, min(int(remaining) + 1, 60)),
                                   allow_watch_bookmarks=False):
                    obj = ev["object"]
                    if ev["type"] == "ERROR":
                        rv = None  # 410 Gone: start from a fresh list
                        break
                    if ev["type"] == "DELETED":
                        raise errors.ClaimFailed(f"SandboxClaim {namespace}/{name} was deleted while waiting "
                                                 "for it to be bound", reason="Deleted")
                    rv = obj.get("metadata", {}).get("resourceVersion", rv)
                    if bound(obj, namespace, name):
                        return obj
                    if time.monotonic() >= deadline:
                        break
            except ApiException as e:
                if e.status == 410:
                    rv = None
                    continue
                raise api_error(f"watching SandboxClaim {namespace}/{name}", e) from e
            finally:
                w.stop()


def condition(obj: Optional[Mapping[str, Any]]) -> Dict[str, Any]:
    for c in ((obj or {}).get("status") or {}).get("conditions") or []:
        if c.get("type") == "Bound":
            return c
    return {}


def condition_text(obj: Optional[Mapping[str, Any]]) -> str:
    c = condition(obj)
    if not c:
        return ""
    return f" ({c.get('reason', '')}: {c.get('message', '')})"


def bound(obj: Mapping[str, Any], namespace: str, name: str) -> bool:
    """True when the claim is Bound with a pod to talk to; raises the typed
    error of a Failed or Expired claim; False while Pending."""
    st = obj.get("status") or {}
    phase = st.get("phase")
    if phase == "Bound" and st.get("podName") and st.get("runnerPort"):
        return True
    if phase in ("Failed", "Expired"):
        c = condition(obj)
        reason = c.get("reason") or phase
        cls = errors.SandboxExpired if phase == "Expired" else FAILED_REASONS.get(reason, errors.ClaimFailed)
        raise cls(f"SandboxClaim {namespace}/{name} is {phase}: {reason}: {c.get('message', '')}".rstrip(": "),
                  reason=reason)
    return False


def expires_at(obj: Mapping[str, Any]) -> Optional[_dt.datetime]:
    return _parse_time((obj.get("status") or {}).get("expiresAt"))


def api_error(what: str, e: ApiException) -> errors.SandboxError:
    """The API server's refusal, with its Status message."""
    msg = e.reason or ""
    try:
        import json

        body = json.loads(e.body or "")
        msg = body.get("message") or msg
    except (ValueError, TypeError, AttributeError):
        pass
    text = f"{what}: {e.status}: {msg}"
    if e.status in (401, 403):
        return errors.Unauthorized(text, status_code=e.status)
    if e.status == 404 and "could not find the requested resource" in msg:
        text += " (is the sandbox-injector chart with its CRDs installed?)"
    return errors.SandboxError(text, status_code=e.status)
