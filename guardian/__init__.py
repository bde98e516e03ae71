"""Guardian: consent, provenance and privacy for voice cloning."""

from __future__ import annotations

__all__ = ["__version__"]


def __getattr__(name: str) -> str:
    """``__version__``, looked up on first use: ``importlib.metadata`` costs a cold
    ``guardian verify`` about 30 ms, and verify never needs the version."""
    if name != "__version__":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        found = version("guardian-voice")
    except PackageNotFoundError:  # running from a source tree without install
        found = "0.0.0+local"
    globals()["__version__"] = found
    return found
