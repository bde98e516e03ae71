"""The one place that imports Ray, and only when a caller asks for a cluster.

Ray is an optional extra (``pip install guardian-voice[ray]``): nothing else in Guardian
imports it, so the embedded default runs without it.
"""

from __future__ import annotations

import importlib
from typing import Any

from guardian.errors import ConfigError

LOCAL = "local"
"""Address that starts a fresh Ray cluster on this machine."""


def connect(address: str) -> Any:
    """The ``ray`` module, connected to ``address`` (an existing connection is reused).

    Workers read their settings (``GUARDIAN_*``, the master key included) from their own
    environment: nothing secret is passed through Ray.
    """
    try:
        ray = importlib.import_module("ray")
    except ImportError as e:
        raise ConfigError(
            "Ray is not installed: pip install 'guardian-voice[ray]', or leave --ray and "
            "GUARDIAN_RAY_ADDRESS unset to run here"
        ) from e
    if not ray.is_initialized():
        try:
            ray.init(
                address=None if address == LOCAL else address,
                include_dashboard=False,
                log_to_driver=False,
                configure_logging=False,
            )
        except (ConnectionError, ValueError, RuntimeError) as e:
            raise ConfigError(f"cannot reach the Ray cluster at {address}: {e}") from e
    return ray


def ray_errors() -> tuple[type[BaseException], ...]:
    """Ray's errors for a task or actor that died (worker crash, node loss, cancel)."""
    exceptions = importlib.import_module("ray.exceptions")
    return (exceptions.RayError,)


__all__ = ["LOCAL", "connect", "ray_errors"]
