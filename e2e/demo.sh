#!/usr/bin/env bash
# make demo: install the chart on the local cluster, start an annotated pod
# from a stock image, run a command in it through the injected runner, then
# claim a warm sandbox from a SandboxPool with sandboxctl, and say what
# happened. Expects `make cluster-up images` to have run (make demo
# does both). Talks only to the local cluster: the API server on loopback
# and the pod's own address.
set -euo pipefail
source "$(dirname "$0")/cluster/lib.sh"

TAG=${IMAGE_TAG:?IMAGE_TAG is the tag make images pushed}
NS=sandbox-demo
RELEASE=sandbox-injector
RELEASE_NS=sandbox-system
export KUBECONFIG=$KUBECONFIG_FILE
kubectl() { "$BIN/kubectl" "$@"; }
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
t0=$(now_ms)
elapsed() { awk -v ms=$(($(now_ms) - t0)) 'BEGIN { printf "%.1f s", ms / 1000 }'; }

# The pool's namespace and its runner token come first: the chart creates the
# SandboxPool in it, and its warm pods read the token when they start. The
# token stays in a file of ours; the Secret, which every injected pod of the
# namespace mounts, holds only its verifier (sha256:<hex>), so that code in
# one sandbox cannot read a token that opens the others.
kubectl create namespace "$NS" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
TOKEN_FILE=$STATE/demo-runner-token
if [ ! -s "$TOKEN_FILE" ]; then
	(umask 077; head -c 18 /dev/urandom | base64 | tr -d '/+=\n' >"$TOKEN_FILE")
fi
TOKEN=$(cat "$TOKEN_FILE")
kubectl -n "$NS" create secret generic sandbox-runner-token \
	--from-literal=token="sha256:$(printf %s "$TOKEN" | sha256sum | cut -d' ' -f1)" \
	--dry-run=client -o yaml | kubectl apply -f - >/dev/null

say "Installing the chart with the node agent and a warm pool of 2 (images from the local registry $REGISTRY, tag $TAG)"
# Helm installs crds/ only on the first install; apply them so that a kept
# cluster gets this tree's CRDs (the README's Upgrading section).
kubectl apply --server-side --force-conflicts -f "$ROOT/charts/sandbox-injector/crds" >/dev/null
"$BIN/helm" upgrade --install "$RELEASE" "$ROOT/charts/sandbox-injector" \
	--namespace "$RELEASE_NS" --create-namespace \
	--set webhook.image.registry="$REGISTRY" --set-string webhook.image.tag="$TAG" \
	--set "webhook.insecureRegistries={$REGISTRY}" \
	--set runner.image.registry="$REGISTRY" --set-string runner.image.tag="$TAG" \
	--set certManager.enabled=false --set webhook.replicas=1 \
	--set agent.enabled=true --set agent.image.registry="$REGISTRY" --set-string agent.image.tag="$TAG" \
	--set agent.criSocket="$CONTAINERD_SOCK" --set agent.imageFsPath="$STATE/containerd/root" \
	--set 'pools[0].name=demo' --set "pools[0].namespace=$NS" --set 'pools[0].podsPerNode=2' \
	--set "pools[0].template.image=$BUSYBOX_IMAGE" \
	--wait --timeout 3m >/dev/null
echo "installed ($(elapsed))"

kubectl -n "$NS" delete pod demo --ignore-not-found --wait=true >/dev/null

POD=$(cat <<YAML
apiVersion: v1
kind: Pod
metadata:
  name: demo
  namespace: $NS
  annotations:
    sandbox.io/inject: "true"
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: $BUSYBOX_IMAGE
    command: ["/bin/sh", "-c", "echo the original command runs; exec sleep 3600"]
YAML
)

say "Waiting until the API server reaches the webhook"
for _ in $(seq 1 120); do
	status=$(printf '%s\n' "$POD" | kubectl create --dry-run=server -o jsonpath='{.metadata.annotations.sandbox\.io/status}' -f - 2>/dev/null || true)
	[ -n "$status" ] && break
	sleep 0.5
done
[ -n "$status" ] || die "the webhook did not answer; see: kubectl -n $RELEASE_NS logs deploy/$RELEASE"
echo "webhook answering ($(elapsed))"

say "Creating an annotated pod from a stock busybox image (sandbox.io/inject: \"true\")"
printf '%s\n' "$POD" | kubectl apply -f - >/dev/null
kubectl -n "$NS" wait --for=condition=Ready pod/demo --timeout=120s >/dev/null
echo "pod Ready ($(elapsed))"
echo "what the webhook did:"
kubectl -n "$NS" get pod demo -o jsonpath='  init containers: {.spec.initContainers[*].name}{"\n"}  command: {.spec.containers[0].command}{"\n"}  status: {.metadata.annotations.sandbox\.io/status}{"\n"}'

IP=$(kubectl -n "$NS" get pod demo -o jsonpath='{.status.podIP}')
say "Running a command in the sandbox through the runner API (POST http://$IP:7080/execute)"
curl -fsS -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
	-d '{"shell":"echo hello from $(hostname); uname -sm; id"}' "http://$IP:7080/execute"
echo
say "Uploading and reading back a file (PUT/GET /files/notes.txt)"
printf 'written by make demo\n' | curl -fsS -X PUT -H "Authorization: Bearer $TOKEN" --data-binary @- "http://$IP:7080/files/notes.txt"
curl -fsS -H "Authorization: Bearer $TOKEN" "http://$IP:7080/files/notes.txt"
say "The supervised original command (GET /status)"
curl -fsS -H "Authorization: Bearer $TOKEN" "http://$IP:7080/status"
echo

say "Liveness in place: the runner probes its child (sandbox.io/liveness-probe: exec cat /tmp/health)"
kubectl -n "$NS" delete pod health --ignore-not-found --wait=true >/dev/null
kubectl apply -f - >/dev/null <<YAML
apiVersion: v1
kind: Pod
metadata:
  name: health
  namespace: $NS
  annotations:
    sandbox.io/inject: "true"
    sandbox.io/liveness-probe: '{"exec":{"command":["cat","/tmp/health"]},"periodSeconds":1,"failureThreshold":5}'
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: $BUSYBOX_IMAGE
    command: ["sh", "-c", "touch /tmp/health && sleep 1000"]
YAML
kubectl -n "$NS" wait --for=condition=Ready pod/health --timeout=120s >/dev/null
HIP=$(kubectl -n "$NS" get pod health -o jsonpath='{.status.podIP}')
hstatus() { curl -fsS -H "Authorization: Bearer $TOKEN" "http://$HIP:7080/status"; }
echo "pod Ready, $(hstatus | grep -o '"healthy":[a-z]*'); removing /tmp/health through the runner API"
curl -fsS -H "Authorization: Bearer $TOKEN" -d '{"argv":["rm","/tmp/health"]}' "http://$HIP:7080/execute" >/dev/null
for _ in $(seq 1 100); do hstatus | grep -q '"healthy":false' && break; sleep 0.2; done
echo "$(hstatus | grep -o '"healthy":[a-z]*'); the probe fails, the pod leaves Ready:"
kubectl -n "$NS" wait --for=condition=Ready=false pod/health --timeout=60s >/dev/null
kubectl -n "$NS" get pod health --no-headers
for _ in $(seq 1 150); do hstatus | grep -q '"restarts":1' && hstatus | grep -q '"healthy":true' && break; sleep 0.2; done
kubectl -n "$NS" wait --for=condition=Ready pod/health --timeout=60s >/dev/null
echo "child killed and restarted in place: $(hstatus | grep -o '"restarts":[0-9]*,"last_exit":{[^}]*}'), pod Ready again,"
echo "container restarts seen by the kubelet: $(kubectl -n "$NS" get pod health -o jsonpath='{.status.containerStatuses[0].restartCount}')"

say "Claiming a warm sandbox from the pool (sandboxctl claim demo --env GREETING=hello)"
kubectl -n "$NS" wait --for=condition=Ready sandboxpool/demo --timeout=120s >/dev/null
echo "pool Ready: $(kubectl -n "$NS" get sandboxpool demo -o jsonpath='{.status.ready}/{.status.desired} warm pods Ready')"
ctl() { "$BIN/sandboxctl" --kubeconfig "$KUBECONFIG" -n "$NS" "$@"; }
claimed=$(ctl claim demo --env GREETING=hello --lifetime 10m)
printf '%s\n' "$claimed"
SANDBOX=$(printf '%s\n' "$claimed" | awk '$1 == "claim:" { print $2 }')
[ -n "$SANDBOX" ] || die "sandboxctl claim printed no claim"
say "Running a command in the claimed sandbox (sandboxctl exec $SANDBOX)"
ctl exec "$SANDBOX" -- sh -c 'echo "$GREETING from $(hostname), reachable only with the claimant token"'
# The group too: another SandboxClaim kind (kubernetes-sigs/agent-sandbox
# has one) would make the plural name ambiguous, and kubectl might pick it.
say "The claim is a Kubernetes object (kubectl get sandboxclaims.sandbox.io)"
kubectl -n "$NS" get sandboxclaims.sandbox.io
say "The pool refills (sandboxctl pools; sandboxctl pods: the claimed pod and its new warm ones)"
sleep 2
ctl pools
ctl pods demo
ctl release "$SANDBOX"

cat <<MSG

Done in $(elapsed). Try more:
  export KUBECONFIG=$KUBECONFIG_FILE
  TOKEN=\$(cat $TOKEN_FILE)   # the Secret holds only its sha256: verifier
  curl -H "Authorization: Bearer \$TOKEN" -d '{"argv":["ls","-l","/"]}' http://$IP:7080/execute
  bin/sandboxctl -n $NS claim demo --env K=V               # a warm sandbox in tens of milliseconds
  bin/sandboxctl -n $NS exec CLAIM -- sh -c 'echo \$K'     # then cp, extend, release, pools, pods
  kubectl -n $NS get sbc                                  # claims are Kubernetes objects (sandboxclaims.sandbox.io)
  kubectl label namespace $NS sandbox.io/inject=enabled   # inject every new pod of the namespace
  make cluster-down                                       # stop the cluster (make cluster-up brings it back)
MSG
