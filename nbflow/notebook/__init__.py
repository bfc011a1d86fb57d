"""The notebook layer: magics, kernel context, widgets (the only place importing IPython)."""
