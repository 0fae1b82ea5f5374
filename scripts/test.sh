#!/usr/bin/env bash
# Runs every test: unit tests, then (as root) the integration and
# end-to-end tests that drive the real binary, containerd and iptables.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"

go build -tags kustomize_disable_go_plugin_support -o minik .
export MINIK_BINARY="$PWD/minik"
go vet ./...
go test -count=1 -timeout 15m ./...

if [ "$(id -u)" = 0 ]; then
	# The first run on a machine also builds the helm CLI for
	# TestIntegrationHelm (a few minutes; kept in /var/tmp/minik-test-cache).
	MINIK_INTEGRATION=1 \
		go test -count=1 -timeout 25m -tags integration -run 'Integration|E2E' ./...
else
	echo "test: not root, integration tests not run" >&2
fi
