"""The jupyter_server extension app (enabled by ``jupyter_server_config.d/nbflow.json``)."""

from __future__ import annotations

from jupyter_server.extension.application import ExtensionApp

from .handlers import routes


class NbflowServer(ExtensionApp):
    """Serves the read-only nbflow API (``handlers.py``) that the lab extension polls."""

    name = "nbflow"

    def initialize_handlers(self) -> None:
        self.handlers.extend(routes())
