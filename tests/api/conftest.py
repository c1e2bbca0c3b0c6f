"""The event API tests use the session's dev server, worker, served app and client
(tests/conftest.py): uvicorn on a free port, as `rapport api` does."""
