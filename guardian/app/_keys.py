"""Use-cases: the signing identity's lifecycle."""

from __future__ import annotations

import datetime as dt

from guardian.app._context import Guardian
from guardian.audit import CERTIFY_ACTION, key_fingerprint
from guardian.keys import KeyInfo
from guardian.store import KeyRole, KeyStatus

EXPIRY_WARNING = dt.timedelta(days=30)
"""How long before the active signing certificate expires ``keys list`` starts warning."""


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


def rotate_audit_key(g: Guardian) -> KeyInfo:
    """Replace the audit key. The old key certifies the new one inside the chain, so the
    log never trusts an audit key on the database's word alone."""
    g.ensure_keys()
    with g.transaction() as s:
        old, new = g.keys.rotate_audit(s)
        fingerprint = key_fingerprint(g.keys.audit_public_key(s, new.kid))
        g.audit.append(
            s,
            CERTIFY_ACTION,
            target=new.kid,
            details={"kid": new.kid, "fingerprint": fingerprint, "previous": old.kid},
            signer=old,
        )
        return new


def revoke_key(g: Guardian, kid: str, *, reason: str) -> KeyInfo:
    with g.transaction() as s:
        info = g.keys.revoke(s, kid, reason=reason)
        g.audit.append(s, "keys.revoke", target=kid, details={"reason": reason})
        return info


def list_keys(g: Guardian) -> list[KeyInfo]:
    with g.reading() as s:
        return g.keys.all(s)


def key_warnings(
    g: Guardian, *, now: dt.datetime | None = None, within: dt.timedelta = EXPIRY_WARNING
) -> list[str]:
    """Problems with the signing identity an operator must act on, e.g. for a readiness
    check: the active signing certificate expires within ``within`` (or has expired).

    Clips signed before expiry keep verifying through the registry, but signing stops
    once the certificate has expired, so rotate (``guardian keys rotate``) in time.
    """
    now = now or dt.datetime.now(dt.UTC)
    warnings = []
    for k in list_keys(g):
        if k.role is not KeyRole.SIGNER or k.status is not KeyStatus.ACTIVE:
            continue
        if k.not_after is None:
            continue
        stamp = k.not_after.strftime("%Y-%m-%dT%H:%M:%SZ")
        if k.not_after <= now:
            warnings.append(
                f"the active signing certificate {k.kid} expired at {stamp}; "
                "run `guardian keys rotate`"
            )
        elif k.not_after - now <= within:
            days = (k.not_after - now).days
            warnings.append(
                f"the active signing certificate {k.kid} expires at {stamp} (in {days} "
                "days); run `guardian keys rotate`"
            )
    return warnings
