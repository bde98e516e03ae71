"""The vault: every subject's personal data, encrypted under the subject's own key."""

from guardian.vault._vault import BlobKind, ShredResult, StoredBlob, Vault, new_id

__all__ = ["BlobKind", "ShredResult", "StoredBlob", "Vault", "new_id"]
