# Third-party programs built from source through the Go module proxy, pinned by
# tools/go.mod (a module of its own, so the root go.mod stays clean). Each
# binary lands in $(BIN) with a stamp; a second run only checks the stamps.

TOOLS_MOD := $(ROOT)/tools/go.mod
tools_version = $(shell awk '{ sub(/^require[ \t]+/, "") } $$1 == "$(1)" && $$2 ~ /^v/ { print $$2; exit }' $(TOOLS_MOD))

KUBE_VERSION       := $(call tools_version,k8s.io/kubernetes)
ETCD_VERSION       := $(call tools_version,go.etcd.io/etcd/server/v3)
HELM_VERSION       := $(call tools_version,helm.sh/helm/v3)
CONTAINERD_VERSION := $(call tools_version,github.com/containerd/containerd/v2)

kube_major := $(word 1,$(subst ., ,$(patsubst v%,%,$(KUBE_VERSION))))
kube_minor := $(word 2,$(subst ., ,$(KUBE_VERSION)))
KUBE_LDFLAGS := -s -w $(foreach p,k8s.io/component-base/version k8s.io/client-go/pkg/version,\
	-X $(p).gitVersion=$(KUBE_VERSION) -X $(p).gitMajor=$(kube_major) -X $(p).gitMinor=$(kube_minor) \
	-X $(p).gitTreeState=clean -X $(p).buildDate=1970-01-01T00:00:00Z)
CONTAINERD_TAGS := no_btrfs,no_devmapper,no_zfs

BUILD_TOOL := BIN=$(BIN) GO=$(GO) $(ROOT)/hack/build-tool.sh

# The envtest set: what the integration tests against a real API server need.
# KUBEBUILDER_ASSETS=$(BIN) points envtest at them.
ENVTEST_TOOLS := etcd kube-apiserver helm kubectl
CLUSTER_TOOLS := kube-controller-manager kube-scheduler kubelet kube-proxy kubeadm \
	containerd containerd-shim-runc-v2 ctr kube-router

.PHONY: tools-envtest
tools-envtest: $(addprefix tool-,$(ENVTEST_TOOLS)) ## Build etcd, kube-apiserver, helm, kubectl into ./bin (KUBEBUILDER_ASSETS=./bin)

.PHONY: tools
tools: tools-envtest $(addprefix tool-,$(CLUSTER_TOOLS)) ## Build every cluster tool into ./bin (Kubernetes with kubeadm, etcd, containerd, helm) and golangci-lint

.PHONY: tool-etcd
tool-etcd:
	@$(BUILD_TOOL) etcd go.etcd.io/etcd/server/v3 $(ETCD_VERSION) -ldflags '-s -w'

# helm built from source assumes Kubernetes 1.20 when it renders without a
# cluster; stamp the version the project runs instead.
HELM_LDFLAGS := -s -w -X helm.sh/helm/v3/internal/version.version=$(HELM_VERSION) \
	-X helm.sh/helm/v3/internal/version.gitTreeState=clean \
	$(foreach p,pkg/chartutil pkg/lint/rules,-X helm.sh/helm/v3/$(p).k8sVersionMajor=$(kube_major) -X helm.sh/helm/v3/$(p).k8sVersionMinor=$(kube_minor))

.PHONY: tool-helm
tool-helm:
	@$(BUILD_TOOL) helm helm.sh/helm/v3/cmd/helm $(HELM_VERSION) \
		-ldflags '$(HELM_LDFLAGS)'

# kubeadm makes the local cluster's certificates and kubeconfigs (its certs and
# kubeconfig phases only; e2e/cluster/up.sh starts the components itself).
KUBE_CMDS := kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl kubeadm
.PHONY: $(addprefix tool-,$(KUBE_CMDS))
$(addprefix tool-,$(KUBE_CMDS)): tool-%:
	@$(BUILD_TOOL) $* k8s.io/kubernetes/cmd/$* $(KUBE_VERSION) -ldflags '$(KUBE_LDFLAGS)'

CONTAINERD_CMDS := containerd containerd-shim-runc-v2 ctr
.PHONY: $(addprefix tool-,$(CONTAINERD_CMDS))
$(addprefix tool-,$(CONTAINERD_CMDS)): tool-%:
	@$(BUILD_TOOL) $* github.com/containerd/containerd/v2/cmd/$* $(CONTAINERD_VERSION) -tags $(CONTAINERD_TAGS) \
		-ldflags '-s -w -X github.com/containerd/containerd/v2/version.Version=$(CONTAINERD_VERSION) -X github.com/containerd/containerd/v2/version.Revision=release'

.PHONY: tools-versions
tools-versions: ## Print the version each built tool reports
	@for t in etcd kube-apiserver kubectl helm kube-controller-manager kube-scheduler kubelet kube-proxy kubeadm containerd ctr; do \
		if [ -x $(BIN)/$$t ]; then printf '%-24s ' $$t; case $$t in \
			kubectl) $(BIN)/$$t version --client 2>&1 | head -1;; \
			kubeadm) $(BIN)/$$t version -o short;; \
			helm) $(BIN)/$$t version --short;; \
			*) $(BIN)/$$t --version 2>&1 | head -1;; esac; \
		else printf '%-24s missing\n' $$t; fi; done

# Code generators live in a module of their own (tools/codegen), so that their
# dependencies never move what the Kubernetes build above uses.
CODEGEN_MOD := $(ROOT)/tools/codegen/go.mod
CONTROLLER_GEN_VERSION := $(shell awk '{ sub(/^require[ \t]+/, "") } $$1 == "sigs.k8s.io/controller-tools" { print $$2; exit }' $(CODEGEN_MOD))

.PHONY: tool-controller-gen
tool-controller-gen:
	@TOOLS_MODULE_DIR=tools/codegen $(BUILD_TOOL) controller-gen sigs.k8s.io/controller-tools/cmd/controller-gen $(CONTROLLER_GEN_VERSION) -ldflags '-s -w'

# kube-router's firewall enforces NetworkPolicy on the local cluster (iptables
# and ipset; e2e/cluster/up.sh runs it with routing and service proxy off).
# It lives in a module of its own (tools/kube-router): it builds against the
# Kubernetes libraries it was released with.
KUBE_ROUTER_MOD := $(ROOT)/tools/kube-router/go.mod
KUBE_ROUTER_VERSION := $(shell awk '{ sub(/^require[ \t]+/, "") } $$1 == "github.com/cloudnativelabs/kube-router/v2" { print $$2; exit }' $(KUBE_ROUTER_MOD))

.PHONY: tool-kube-router
tool-kube-router: ## Build kube-router (its firewall enforces NetworkPolicy on the local cluster) into ./bin
	@TOOLS_MODULE_DIR=tools/kube-router $(BUILD_TOOL) kube-router github.com/cloudnativelabs/kube-router/v2/cmd/kube-router $(KUBE_ROUTER_VERSION) \
		-ldflags '-s -w -X github.com/cloudnativelabs/kube-router/v2/pkg/version.Version=$(KUBE_ROUTER_VERSION)'
