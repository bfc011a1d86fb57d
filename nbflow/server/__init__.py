"""The jupyter_server extension: a read-only REST API over nbflow stores (``app.py``)."""
