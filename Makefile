# The two things a newcomer needs are `make serve` and `make test` (see README.md).
BUN ?= bun
COMMIT := $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
DIST ?= dist

.PHONY: install serve test typecheck build bench clean

install:
	$(BUN) install --frozen-lockfile

serve: install
	$(BUN) src/main.ts serve

test: install
	$(BUN) test --timeout 60000

typecheck: install
	$(BUN) x tsc --noEmit -p .

# One executable: every dependency and the docs assets are embedded.
build: install
	$(BUN) build src/main.ts src/ingest/parse-worker.ts --compile --minify --define RAGD_COMMIT='"$(COMMIT)"' --outfile $(DIST)/ragd

bench: install
	$(BUN) bench/run.ts

clean:
	rm -rf dist bench/results
