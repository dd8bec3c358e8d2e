# The Helm chart (charts/sandbox-injector): lint with several value sets, then
# the chart's Go tests (render assertions, schema, README values reference,
# server-side dry-run and admission behaviour against a real kube-apiserver).

CHART_DIR := $(ROOT)/charts/sandbox-injector
# The Kubernetes version helm renders and lints for (the chart needs 1.30+; a
# helm built from source otherwise assumes an old default).
CHART_KUBE_VERSION ?= $(if $(KUBE_VERSION),$(KUBE_VERSION),v1.37.2)
# Value sets helm lint checks besides the defaults: one --set list each,
# single-quoted so that the shell leaves the braces alone.
CHART_LINT_SETS := \
	'certManager.enabled=false' \
	'certManager.enabled=false,generatedCerts.generator=webhook' \
	'guard.enabled=false' \
	'agent.enabled=true,runner.injectionMethod=copy' \
	'agent.enabled=true,agent.prepull.images={busybox:1.37},agent.prepull.learn=true,pools[0].name=py,pools[0].namespace=team,pools[0].template.image=python:3.13' \
	'webhook.excludedNamespaces={ci,monitoring},webhook.failurePolicy=Ignore,guard.validationActions={Warn,Audit}' \
	'webhook.replicas=1,metrics.enabled=false,runner.port=7090'

TEST_PARTS += helm-test

.PHONY: helm-lint
helm-lint: tool-helm ## helm lint the chart with its default values and several value sets
	$(BIN)/helm lint --strict --kube-version $(CHART_KUBE_VERSION) $(CHART_DIR)
	@for set in $(CHART_LINT_SETS); do \
		echo "helm lint --set $$set"; \
		$(BIN)/helm lint --strict --quiet --kube-version $(CHART_KUBE_VERSION) --namespace sandbox-system --set "$$set" $(CHART_DIR); \
	done

.PHONY: helm-test
helm-test: tools-envtest helm-lint chart-certmanager-harness ## Chart tests: helm lint, render assertions, dry-run, admission and cert-manager on a real kube-apiserver
	HELM=$(BIN)/helm KUBEBUILDER_ASSETS=$(BIN) $(GO) test -race -count=1 -timeout 20m ./charts/...

# cert-manager's controllers and CA injector, assembled from its packages in a
# module of its own (charts/certmanager-harness). The chart test builds it
# again; this build fills the Go build cache so that the test's is quick (a
# cold build takes minutes on two cores).
.PHONY: chart-certmanager-harness
chart-certmanager-harness:
	cd $(ROOT)/charts/certmanager-harness && CGO_ENABLED=0 $(GO) build -o /dev/null .

.PHONY: helm-template
helm-template: ## Print the chart rendered with its default values (needs bin/helm: make tool-helm)
	@$(BIN)/helm template sandbox-injector $(CHART_DIR) --namespace sandbox-injector --kube-version $(CHART_KUBE_VERSION)
