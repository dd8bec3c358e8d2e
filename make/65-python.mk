# The Python client (clients/python, import sandbox_injector). Its only
# dependencies, kubernetes and httpx, and pytest come from the distribution's
# packages (no Python package index is used): a venv in _out/python-venv
# sees them (--system-site-packages) and gets the client installed without
# dependencies. The unit tests build the real runner and start it on
# loopback; the claim tests start a real kube-apiserver (envtest), the claim
# controller and runners through clients/python/tests/fixture. The e2e suite
# (tests/e2e) runs on the local cluster from the Go test TestPythonClient.

PYTHON       ?= /usr/bin/python3
PYTHON_VENV  := $(ROOT)/_out/python-venv
PYTHON_DEBS  := python3-kubernetes python3-httpx python3-h2 python3-pytest python3-venv
PYTEST       := $(PYTHON_VENV)/bin/python -m pytest -p no:cacheprovider
SUDO         := $(if $(filter 0,$(shell id -u)),,sudo)

.PHONY: python-env
python-env: ## Python client venv in _out/python-venv: installs missing Debian packages (python3-kubernetes, -httpx, -pytest, -venv), reuses what is there
	@missing=""; \
	for m in kubernetes httpx h2 pytest ensurepip; do \
		if $(PYTHON) -c "import $$m" 2>/dev/null; then echo "python-env: $$m: present"; else missing="$$missing $$m"; fi; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "python-env: missing:$$missing; apt-get install $(PYTHON_DEBS)"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $(PYTHON_DEBS); \
	fi
	@if [ -x $(PYTHON_VENV)/bin/python ]; then echo "python-env: reusing $(PYTHON_VENV)"; \
	else echo "python-env: creating $(PYTHON_VENV)"; $(PYTHON) -m venv --system-site-packages $(PYTHON_VENV); fi
	@echo "python-env: installing clients/python (no dependencies, no index)"
	@$(PYTHON_VENV)/bin/pip install -q --no-deps --no-build-isolation --no-index ./clients/python
	@$(PYTHON_VENV)/bin/python -c "import sandbox_injector, kubernetes, httpx; print('python-env: sandbox_injector', sandbox_injector.__version__, 'kubernetes', kubernetes.__version__, 'httpx', httpx.__version__)"

TEST_PARTS += test-python
.PHONY: test-python
test-python: python-env tools-envtest ## Python client tests: a real runner (run, stream 50x, files, errors) and claims against a real kube-apiserver
	cd $(ROOT) && KUBEBUILDER_ASSETS=$${KUBEBUILDER_ASSETS:-$(BIN)} $(PYTEST) -m 'not e2e' clients/python/tests

# TestPythonClient (e2e/inject) runs the e2e suite with the venv's Python.
e2e: python-env
