"""Use-cases: the signing identity's lifecycle."""

from __future__ import annotations

from guardian.app._context import Guardian
from guardian.keys import KeyInfo


def init_keys(g: Guardian) -> list[KeyInfo]:
    """Create whatever part of the identity is missing; idempotent."""
    with g.transaction() as s:
        created = g.keys.init(s)
        if created:
            g.audit.append(s, "keys.init", details={"created": [k.kid for k in created]})
        return created


def rotate_key(g: Guardian) -> KeyInfo:
    g.ensure_keys()
    with g.transaction() as s:
        new = g.keys.rotate(s)
        g.audit.append(s, "keys.rotate", target=new.kid)
        return new


def revoke_key(g: Guardian, kid: str, *, reason: str) -> KeyInfo:
    with g.transaction() as s:
        info = g.keys.revoke(s, kid, reason=reason)
        g.audit.append(s, "keys.revoke", target=kid, details={"reason": reason})
        return info


def list_keys(g: Guardian) -> list[KeyInfo]:
    with g.reading() as s:
        return g.keys.all(s)
