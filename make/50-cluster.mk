# The local single-node cluster (e2e/cluster), the images and the e2e tests.
#
# Everything that talks to the cluster uses the kubeconfig at
# $(CLUSTER_KUBECONFIG) (_out/cluster/kubeconfig by default); targets here
# export it as KUBECONFIG. From a shell:  export KUBECONFIG=$PWD/_out/cluster/kubeconfig
# Images live in the local registry $(CLUSTER_REGISTRY) (plain HTTP), e.g.
# $(CLUSTER_REGISTRY)/sandbox-runner:$(IMAGE_TAG).

CLUSTER_DIR        ?= $(ROOT)/_out/cluster
CLUSTER_KUBECONFIG := $(CLUSTER_DIR)/kubeconfig
CLUSTER_NODE_IP    ?= 10.250.0.1
CLUSTER_REGISTRY   := $(CLUSTER_NODE_IP):5000
IMAGE_TAG          ?= $(VERSION)
# E2E_RUN limits `make e2e` to the tests matching a go test -run regexp.
E2E_RUN            ?= .
# The project's images; each is built from cmd/<name> when that exists.
PROJECT_IMAGES     := sandbox-runner sandbox-webhook sandbox-agent
# Platforms `make images` publishes each project image for, as one OCI image
# index (the binaries are cross-compiled with CGO_ENABLED=0). The local
# cluster is linux/amd64; IMAGE_PLATFORMS=linux/amd64 skips the arm64 builds.
IMAGE_PLATFORMS    ?= linux/amd64 linux/arm64

cluster_env := SANDBOX_CLUSTER_DIR=$(CLUSTER_DIR) SANDBOX_CLUSTER_NODE_IP=$(CLUSTER_NODE_IP) BIN=$(BIN)

.PHONY: deps
deps: ## Install the Debian packages the cluster and images need (hack/install-deps.sh)
	@$(ROOT)/hack/install-deps.sh

.PHONY: cluster-up
cluster-up: tools deps ## Bring up the local single-node cluster (KUBECONFIG=_out/cluster/kubeconfig)
	@$(cluster_env) $(ROOT)/e2e/cluster/up.sh

.PHONY: cluster-down
cluster-down: ## Stop the local cluster and undo its host changes (keeps its data; pods come back on cluster-up)
	@$(cluster_env) $(ROOT)/e2e/cluster/down.sh

.PHONY: cluster-wipe
cluster-wipe: ## Stop the local cluster and delete its data
	@$(cluster_env) $(ROOT)/e2e/cluster/down.sh --wipe

.PHONY: cluster-status
cluster-status: ## Show the local cluster's components, network guard, node and pods
	@$(cluster_env) $(ROOT)/e2e/cluster/status.sh

.PHONY: images
images: deps ## Build the project images for IMAGE_PLATFORMS and push each as one image index to the local registry (tag: VERSION)
	@curl -fsS -o /dev/null http://$(CLUSTER_REGISTRY)/v2/ || { echo "images: no registry at $(CLUSTER_REGISTRY); run make cluster-up" >&2; exit 1; }
	@mkdir -p $(BIN)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/ ./cmd/sandbox-image ./e2e/images/pause ./e2e/images/hello
	@set -e; for img in $(PROJECT_IMAGES); do \
		if [ ! -d cmd/$$img ]; then echo "images: cmd/$$img does not exist yet, skipping"; continue; fi; \
		tags=; [ $$img = sandbox-runner ] && tags='$(RUNNER_TAGS)'; \
		bins=; for plat in $(IMAGE_PLATFORMS); do \
			out=$(BIN)/$$(echo $$plat | tr / -)/$$img; \
			GOOS=$${plat%%/*} GOARCH=$${plat#*/} CGO_ENABLED=0 $(GO) build -trimpath -tags "$$tags" -ldflags '$(LDFLAGS)' -o $$out ./cmd/$$img; \
			bins=$${bins:+$$bins,}$$plat=$$out; \
		done; \
		$(BIN)/sandbox-image -kind $${img#sandbox-} -binary "$$bins" -ref $(CLUSTER_REGISTRY)/$$img:$(IMAGE_TAG) -push -insecure; \
	done
	$(BIN)/sandbox-image -kind pause -binary $(BIN)/pause -ref $(CLUSTER_REGISTRY)/pause:$(IMAGE_TAG) -push -insecure
	$(BIN)/sandbox-image -kind hello -binary $(BIN)/hello -ref $(CLUSTER_REGISTRY)/hello:$(IMAGE_TAG) -push -insecure
	$(BIN)/sandbox-image -kind busybox -ref $(CLUSTER_REGISTRY)/busybox:$(IMAGE_TAG) -push -insecure

.PHONY: images-tar
images-tar: ## Build the project images as tarballs in _out/images (no registry needed)
	@mkdir -p $(BIN) $(ROOT)/_out/images
	@CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/ ./cmd/sandbox-image
	@set -e; for img in $(PROJECT_IMAGES); do \
		if [ ! -d cmd/$$img ]; then echo "images-tar: cmd/$$img does not exist yet, skipping"; continue; fi; \
		tags=; [ $$img = sandbox-runner ] && tags='$(RUNNER_TAGS)'; \
		CGO_ENABLED=0 $(GO) build -trimpath -tags "$$tags" -ldflags '$(LDFLAGS)' -o $(BIN)/$$img ./cmd/$$img; \
		$(BIN)/sandbox-image -kind $${img#sandbox-} -binary $(BIN)/$$img -ref $(CLUSTER_REGISTRY)/$$img:$(IMAGE_TAG) -tarball $(ROOT)/_out/images/$$img.tar; \
	done

.PHONY: e2e
# The e2e suite runs on this machine's own platform only: the cluster is
# local, and cross-compiling the other platforms' images would add minutes
# to every run (their index is tested in cmd/sandbox-image).
E2E_IMAGE_PLATFORMS ?= $(shell $(GO) env GOOS)/$(shell $(GO) env GOARCH)

e2e: cluster-up ## End-to-end tests against the local cluster (brings it up and pushes the images first); E2E_RUN=regexp runs some
	@$(MAKE) --no-print-directory images IMAGE_PLATFORMS='$(E2E_IMAGE_PLATFORMS)' VERSION=$(VERSION) IMAGE_TAG=$(IMAGE_TAG)
	KUBECONFIG=$(CLUSTER_KUBECONFIG) SANDBOX_E2E=1 IMAGE_TAG=$(IMAGE_TAG) $(cluster_env) \
		$(GO) test -count=1 -p 1 -timeout 45m -v -run '$(E2E_RUN)' ./e2e/...

.PHONY: lint-shell
lint-shell: ## shellcheck the cluster, install and tools scripts (when shellcheck is installed)
	@if command -v shellcheck >/dev/null; then shellcheck -x -P SCRIPTDIR -S warning e2e/cluster/*.sh e2e/demo.sh hack/*.sh tools/gen-replaces.sh && echo "lint-shell: clean"; \
	else echo "lint-shell: shellcheck not installed (apt-get install shellcheck), skipped"; fi

# Pod start-up on the local cluster (issue 17): a short smoke of the same
# test runs in every `make e2e`; E2E_BENCH=1 makes it the benchmark.
BENCH_PARTS += bench-startup
.PHONY: bench-startup
bench-startup: ## On the local cluster, one run: pod create-to-Ready uninjected, copy and image volume (50 each one at a time, interleaved; bursts of 20), every phase from watches and the kubelet's own timings, vs plain
	E2E_BENCH=1 $(MAKE) e2e E2E_RUN='^TestStartupLatency$$'

BENCH_PARTS += bench-images
.PHONY: bench-images
bench-images: ## Benchmark building an image around a runner-sized binary
	$(GO) test -run '^$$' -bench . -benchmem -count 1 ./internal/ociimage

.PHONY: test-cluster-restart
test-cluster-restart: cluster-up ## Down + up keeps pods and down leaves the host clean (stops the cluster in between: run alone)
	@$(cluster_env) $(ROOT)/e2e/cluster/restart-test.sh

.PHONY: test-upgrade
test-upgrade: ## The upgrade proof alone (make e2e runs it too): the previous release's chart and images, helm upgrade and rollback under load
	$(MAKE) --no-print-directory e2e E2E_RUN='^TestUpgradeFromPreviousRelease$$'
