"""Imports of third-party modules whose import-time warnings are about their own code.

pyworld 0.3.5 and webrtcvad (imported by resemblyzer too) import ``pkg_resources``,
which warns that it is deprecated; resemblyzer imports ``scipy.ndimage.morphology``,
deprecated since SciPy 1.8. None of it is Guardian's to fix, and an operator's first run
should not print it, so these imports, and only these, are made quiet.
"""

from __future__ import annotations

import importlib
import warnings
from types import ModuleType


def quiet_import(name: str) -> ModuleType:
    """Import ``name`` with the warnings raised during its import silenced."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.filterwarnings(
            "ignore", message="pkg_resources is deprecated", category=UserWarning
        )
        return importlib.import_module(name)
