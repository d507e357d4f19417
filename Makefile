# The two commands of the README are `make server` and `make test`.
.PHONY: setup server test test-rust test-elixir lint bench

setup:
	scripts/setup
	scripts/setup-wasm
	scripts/build-web

server: setup
	mix phx.server

test: setup lint test-rust test-elixir
	@for s in scripts/test-js scripts/test-autobahn scripts/test-fuzz scripts/test-e2e; do \
	  if [ -x $$s ]; then echo "== $$s"; $$s || exit 1; fi; \
	done

test-rust:
	cargo test --workspace --quiet

test-elixir:
	MIX_ENV=test mix test

lint:
	cargo fmt --all --check
	cargo clippy --workspace --all-targets --quiet -- -D warnings
	mix format --check-formatted
	MIX_ENV=test mix compile --warnings-as-errors --force

bench:
	cargo bench -p tandem_core
	MIX_ENV=test mix run bench/rooms.exs
	MIX_ENV=dev mix run bench/transport.exs
	scripts/bench-fuzz
