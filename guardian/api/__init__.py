"""Guardian's HTTP API (FastAPI). The only package that imports fastapi.

Routes check their input, call one use-case of :mod:`guardian.app` and map errors; the
rules live in the use-cases, so the API and the CLI cannot diverge.
"""

from guardian.api._app import create_app
from guardian.api._context import RequestIdFilter

__all__ = ["RequestIdFilter", "create_app"]
