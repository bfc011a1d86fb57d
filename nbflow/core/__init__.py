"""The engine, pure Python: nothing here imports outside the standard library."""
