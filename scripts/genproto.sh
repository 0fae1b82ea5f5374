#!/usr/bin/env bash
# Regenerates the Go code for every api/*.proto (package api). Installs
# Debian's protobuf-compiler and the Go plugins from the module proxy when
# they are missing. Run from anywhere inside the repository.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

if ! command -v protoc >/dev/null 2>&1; then
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends protobuf-compiler
fi

gobin=$(go env GOPATH)/bin
export PATH="$gobin:$PATH"
if ! command -v protoc-gen-go >/dev/null 2>&1 || ! command -v protoc-gen-go-grpc >/dev/null 2>&1; then
	# Two commands: the plugins live in different modules.
	go install google.golang.org/protobuf/cmd/protoc-gen-go@latest
	go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@latest
fi

protoc --proto_path=api \
	--go_out=api --go_opt=paths=source_relative \
	--go-grpc_out=api --go-grpc_opt=paths=source_relative \
	api/*.proto
echo "genproto: regenerated $(ls api/*.proto | tr '\n' ' ')"
