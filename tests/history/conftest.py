"""The history tests use the session's dev server, in-process worker, served app and CLI
(tests/conftest.py)."""
