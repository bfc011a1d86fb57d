"""Rich output per task: what a task displays (``display(df)``, a figure, Markdown) is kept
with its attempt, like what it prints, and never reaches a cell.

IPython's ``display()``, ``update_display()`` and ``clear_output()`` all go through the
shell's display publisher.  While a run goes on (:data:`capturing_displays`), the
publisher's ``publish`` and ``clear_output`` are wrapped: in a thread that runs a task the
bundle goes to ``core.worker.record_display`` (then to the log record, the store and the
dashboard), everywhere else to the publisher as before.

Only the MIME types the dashboard can show safely are kept (``KEPT``); a widget view
keeps its text.  Values are text: JSON data is serialised, bytes are base64 (IPython
already gives images so).
"""

from __future__ import annotations

import base64
import json
import sys
from typing import Any

from ..core.scoped import WhileAny
from ..core.worker import clear_displays, current_task, record_display

#: What is kept of a bundle, in the order the dashboard prefers them.
KEPT = ("text/html", "image/png", "image/jpeg", "image/svg+xml", "text/markdown",
        "application/json", "text/plain")


def bundle_of(data: Any, metadata: Any = None) -> tuple[dict, int] | None:
    """The storable form of one display's data, and its size in characters; None if it
    holds nothing the dashboard shows."""
    if not isinstance(data, dict):
        return None
    kept: dict[str, str] = {}
    for mime in KEPT:
        if mime not in data:
            continue
        value = data[mime]
        if isinstance(value, bytes):
            value = base64.b64encode(value).decode("ascii")
        elif not isinstance(value, str):
            try:
                value = json.dumps(value)
            except (TypeError, ValueError):
                continue
        kept[mime] = value
    if not kept:
        return None
    out: dict[str, Any] = {"data": kept}
    if isinstance(metadata, dict) and metadata:
        # Only what says how big an image is: the rest is the front end's business.
        sizes = {m: {k: v for k, v in md.items() if k in ("width", "height")}
                 for m, md in metadata.items() if isinstance(md, dict) and m in kept}
        sizes = {m: md for m, md in sizes.items() if md}
        if sizes:
            out["metadata"] = sizes
    return out, sum(map(len, kept.values()))


def in_a_task() -> bool:
    """Whether this thread runs a task now."""
    try:
        current_task()
    except RuntimeError:
        return False
    return True


def _publisher() -> Any:
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return getattr(shell, "display_pub", None)


def _install() -> None:
    pub = _publisher()
    if pub is None or "publish" in vars(pub):   # no shell, or wrapped already
        return
    publish, clear = pub.publish, pub.clear_output

    def publish_or_keep(data, metadata=None, *args, **kwargs):
        transient = kwargs.get("transient")
        display_id = transient.get("display_id") if isinstance(transient, dict) else None
        found = bundle_of(data, metadata)
        if found is not None and record_display(found[0], found[1], display_id):
            return None
        if found is None and in_a_task():   # nothing to keep, and not for the cell either
            return None
        return publish(data, metadata, *args, **kwargs)

    def clear_or_forget(wait=False):
        if not clear_displays():
            clear(wait)

    pub.publish, pub.clear_output = publish_or_keep, clear_or_forget
    pub._nbflow_unwrapped = (publish, clear)


def _remove() -> None:
    pub = _publisher()
    if pub is None or "_nbflow_unwrapped" not in vars(pub):
        return
    del pub.publish, pub.clear_output, pub._nbflow_unwrapped


#: ``with capturing_displays():`` keeps tasks' rich output while any run is inside.
capturing_displays = WhileAny(_install, _remove)
