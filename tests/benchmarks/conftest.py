"""Make ``benchmarks/`` importable however pytest was started.

It is a folder of the repository, not of the installed package, and ``pytest``
alone does not put the repository root on ``sys.path`` (``python -m pytest`` does).
"""

import sys
from pathlib import Path

ROOT = str(Path(__file__).resolve().parents[2])
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
