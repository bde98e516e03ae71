"""Wiring: one object that holds the services a use-case needs."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine
from sqlmodel import Session

from guardian.app._watermarking import keyed_detector, keyed_model
from guardian.audit import AuditLog
from guardian.config import Settings, get_settings
from guardian.errors import ConfigError
from guardian.keys import KeyStore, load_master_key
from guardian.policy import PolicySet, default_policy_dir
from guardian.provenance import Registry
from guardian.store import lock_writes, make_engine, migrate, session_scope
from guardian.vault import Vault
from guardian.watermark import Detector, PayloadKey, deployment_tag, load_detector

if TYPE_CHECKING:
    from guardian.engine import BaseVoice, TrainedAdapter
    from guardian.watermark import WatermarkModel

log = logging.getLogger("guardian")


@dataclass
class Guardian:
    """Services bound to one Guardian home and database."""

    settings: Settings
    engine: Engine
    keys: KeyStore
    audit: AuditLog
    registry: Registry
    vault: Vault
    payload_key: PayloadKey = field(repr=False)
    """This deployment's secret payload code, derived from the master key."""
    _watermark: WatermarkModel | None = field(default=None, repr=False)
    _detector: Detector | None = field(default=None, repr=False)
    detector_loading: Future[Detector] | None = field(default=None, repr=False)
    """A load of :attr:`detector` already under way (``preload_detector``), if any."""
    detector_threads: int | None = field(default=None, repr=False)
    """Threads the ONNX detector may use (one per core when None); set before its load."""
    _deployment: int | None = field(default=None, repr=False)
    _policies: PolicySet | None = field(default=None, repr=False)
    _base_voice: BaseVoice | None = field(default=None, repr=False)
    adapters: dict[str, TrainedAdapter] = field(default_factory=dict, repr=False)
    """Adapters already decrypted and checked, by vault blob id (blobs never change)."""

    @property
    def base_voice(self) -> BaseVoice:
        """The base TTS voice, loaded on first use (about 0.4 s)."""
        if self._base_voice is None:
            from guardian.engine import BaseVoice  # torch and opacus load only when needed

            self._base_voice = BaseVoice()
        return self._base_voice

    @property
    def policy_dir(self) -> Path:
        """Where the Cedar policies and the retention rules live."""
        return self.settings.policy_dir or default_policy_dir()

    @property
    def policies(self) -> PolicySet:
        """The deployment's policies, loaded (and parsed) on first use."""
        if self._policies is None:
            self._policies = PolicySet.load(self.policy_dir)
        return self._policies

    @property
    def watermark(self) -> WatermarkModel:
        """The watermark model (torch), loaded (and hash-checked) on first use: what
        embeds. Verification uses :attr:`detector`."""
        if self._watermark is None:
            from guardian.watermark import load_model  # torch loads only when needed

            # the tone code lies where this deployment's key puts it (docs/threat-model.md)
            self._watermark = keyed_model(
                load_model(self.settings.watermark_model), self.payload_key
            )
        return self._watermark

    @property
    def detector(self) -> Detector:
        """The watermark detector ``verify`` runs, loaded (and hash-checked) on first use:
        ONNX Runtime when the model card pins an ONNX detector, without torch."""
        if self._detector is None:
            if self.detector_loading is not None:
                detector = self.detector_loading.result()
            else:
                spec = self.settings.watermark_model
                detector = load_detector(spec, threads=self.detector_threads)
            self._detector = keyed_detector(detector, self.payload_key)
        return self._detector

    @property
    def detector_loaded(self) -> bool:
        return self._detector is not None

    def deployment_tag(self) -> int:
        """4-bit tag of this deployment's first root certificate (see watermark payload).

        The first root never changes, so the tag is read once per instance.
        """
        if self._deployment is None:
            self.ensure_keys()
            with self.reading() as s:
                self._deployment = deployment_tag(self.keys.first_root_pem(s))
        return self._deployment

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A unit of work: commits atomically, then advances the audit head."""
        with session_scope(self.engine) as session:
            lock_writes(session)
            yield session
        # Under the same lock, so a slower writer never puts back an older head.
        with session_scope(self.engine) as session:
            lock_writes(session)
            self.audit.write_head(session)

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """A read-only session."""
        with Session(self.engine, expire_on_commit=False) as session:
            yield session

    def ensure_keys(self) -> None:
        """Create the signing identity on first use, recording it in the audit log."""
        with self.reading() as s:
            if self.keys.is_initialized(s):
                return
        with self.transaction() as s:
            created = self.keys.init(s)
            if created:
                self.audit.append(s, "keys.init", details={"created": [k.kid for k in created]})
                log.info("created signing identity: %s", ", ".join(k.kid for k in created))


def _prepare_home(home: Path) -> None:
    try:
        home.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as e:
        raise ConfigError(f"cannot create GUARDIAN_HOME {home}: {e.strerror or e}") from e


def _holds_sealed_data(settings: Settings) -> bool:
    """Whether this home already holds secrets sealed under some master key."""
    keys = settings.keys_dir
    return settings.resolved_vault_key_path.exists() or (keys.is_dir() and any(keys.glob("*.key")))


def open_guardian(
    settings: Settings | None = None, *, detector: Future[Detector] | None = None
) -> Guardian:
    """Open (creating and upgrading as needed) the Guardian home and database.

    ``detector``: a load of the detector already started for these settings
    (``guardian.watermark.preload_detector``), which :attr:`Guardian.detector` waits for.
    """
    settings = settings or get_settings()
    _prepare_home(settings.home)
    engine = make_engine(settings.resolved_database_url)
    migrate(engine)
    master = load_master_key(
        env_value=settings.master_key,
        path=settings.master_key_path,
        create=True,
        expected=_holds_sealed_data(settings),
    )
    keys = KeyStore(keys_dir=settings.keys_dir, master=master, organization=settings.organization)
    audit = AuditLog(keystore=keys, head_path=settings.audit_head_path)
    guardian = Guardian(
        settings=settings,
        engine=engine,
        keys=keys,
        audit=audit,
        registry=Registry(),
        vault=Vault(master, settings.resolved_vault_key_path),
        payload_key=PayloadKey.derive(master.derive("watermark-payload")),
        detector_loading=detector,
    )
    with session_scope(engine) as s:  # no audit entry: nothing a person did
        guardian.vault.ensure(s)
    return guardian


def open_existing_guardian(settings: Settings | None = None) -> Guardian | None:
    """The deployment at the configured home, or ``None`` when there is none yet.

    For offline checks (receipts, consent records): they use a deployment's trust
    anchors when run inside one, and must not create a home, keys or a master key where
    there was none.
    """
    settings = settings or get_settings()
    has_db = settings.database_url is not None or (settings.home / "guardian.db").exists()
    if not settings.home.is_dir() or not has_db:
        return None
    return open_guardian(settings)
