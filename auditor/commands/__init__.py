"""One module per command; each exposes `register(subparsers)` and keeps heavy imports inside `run`."""
