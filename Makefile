# The two commands a new user needs. Both install what they need first.
.PHONY: setup demo test

setup:
	cd / && rustup target add --toolchain stable wasm32-wasip2
	python3 -m pip install --quiet --disable-pip-version-check "componentize-py==0.25.1"

demo: setup
	cargo run -p inland-demo

test: setup
	cargo test --workspace
