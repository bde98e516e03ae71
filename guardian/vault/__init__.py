"""The vault: every subject's personal data, encrypted under the subject's own key."""

from guardian.vault._vault import (
    BlobKind,
    SealedBlob,
    ShredResult,
    StoredBlob,
    Vault,
    new_id,
)

__all__ = ["BlobKind", "SealedBlob", "ShredResult", "StoredBlob", "Vault", "new_id"]
