"""Reading a model card: a YAML mapping next to the weights it pins."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from guardian.errors import GuardianError


def read_card(card: Path, *, what: str, error: type[GuardianError]) -> dict[str, Any]:
    """The card's fields, or ``error`` naming ``what`` the card is and what is wrong."""
    try:
        meta = yaml.safe_load(card.read_text())
    except FileNotFoundError as e:
        raise error(f"{what} {card} does not exist") from e
    except yaml.YAMLError as e:
        raise error(f"{what} {card} is not valid YAML") from e
    if not isinstance(meta, dict):
        raise error(f"{what} {card} is not a mapping")
    return meta
