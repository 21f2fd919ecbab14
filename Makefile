# Ketch: the two commands of the README are `make up` and `make test`.
PY      := .venv/bin/python
PYTEST  := .venv/bin/pytest
KETCH   := .venv/bin/ketch

.PHONY: deps up down test test-unit test-integration test-e2e lint proto images bench clean-host

deps:                      ## system packages (apt) and the virtualenv
	deploy/install-deps.sh

images: deps               ## the offline busybox base image
	$(KETCH) runtime build-busybox

up: deps                   ## install everything and start a local cluster
	$(KETCH) up --with-sample-app

down:
	$(KETCH) down

test: deps                 ## the whole suite: unit, then integration and e2e (as root)
	$(PYTEST) -q -p no:cacheprovider tests/unit tests/integration tests/e2e

test-unit:
	$(PYTEST) -q tests/unit

test-integration:
	$(PYTEST) -q tests/integration

test-e2e:
	$(PYTEST) -q tests/e2e

lint:
	.venv/bin/ruff check .

proto:                     ## regenerate gRPC stubs from proto/*.proto
	$(PY) -m proto.generate

bench:
	$(PY) -m bench

clean-host:                ## remove kernel objects and processes Ketch left behind
	deploy/clean-host.sh
