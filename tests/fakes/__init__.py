"""In-memory implementations of cbsnap's own protocols, for fast use-case tests (no I/O, no mocks)."""
