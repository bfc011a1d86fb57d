"""A real jupyter_server with the nbflow extension (``pytest-jupyter``'s fixtures).

The fixtures come in by a star import here, not through ``pytest_plugins`` at the
top, so their autouse parts (an event loop and a server clean-up per test) run
for this folder's tests only.
"""

from __future__ import annotations

import pytest
from pytest_jupyter.jupyter_server import *  # noqa: F403
from traitlets.config import Config


@pytest.fixture
def jp_server_config():
    return Config({"ServerApp": {"jpserver_extensions": {"nbflow": True}}})
