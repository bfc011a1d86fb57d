"""The engine's building blocks (``tests/engines.py``), for tests that run it on a
real pool and the real clock."""

from engines import engine_for, final_states, spec  # noqa: F401 - the fixtures
