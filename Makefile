.PHONY: build test setup bench

# kustomize's Go plugin loader (kubectl apply -k) imports the standard
# library's plugin package; linked in, it makes the linker keep every
# exported method and a dynamic symbol table for all of them. minik loads
# no Go plugins, so it builds without the loader.
TAGS := kustomize_disable_go_plugin_support

build:
	go build -tags $(TAGS) -o minik .

setup:
	bash scripts/setup.sh

test:
	bash scripts/test.sh

bench:
	go run ./store/cmd/storebench
