.PHONY: build test setup bench

build:
	go build -o minik .

setup:
	bash scripts/setup.sh

test:
	bash scripts/test.sh

bench:
	go run ./store/cmd/storebench
