"""The repository's root on sys.path, so that the benchmarks can import what they share with
the tests (tests/support/): `import _paths` before any `from tests.support ...`.

A benchmark runs as `.venv/bin/python bench/<name>.py`, which puts bench/ on sys.path but not
the root. The root goes last, so that nothing there shadows an installed package.
"""

import sys
from pathlib import Path

ROOT = str(Path(__file__).resolve().parent.parent)
if ROOT not in sys.path:
    sys.path.append(ROOT)
