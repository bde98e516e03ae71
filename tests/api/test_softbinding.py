"""The C2PA soft-binding resolution API and the published trust anchors."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import c2pa
from cryptography import x509
from fastapi.testclient import TestClient
from sqlmodel import select

from guardian.app import FINGERPRINT_ALG, WATERMARK_ALG, Guardian
from guardian.audio import OutputFormat, decode_bytes, encode_bytes
from guardian.provenance import fingerprint_of
from guardian.store import Label
from tests.conftest import write_clip


def _label_row(g: Guardian) -> Label:
    with g.reading() as s:
        return s.exec(select(Label)).one()


def test_supported_algorithms_form(client: TestClient) -> None:
    doc = client.get("/v1/services/supportedAlgorithms").json()
    assert doc == {
        "watermarks": [{"alg": WATERMARK_ALG}],
        "fingerprints": [{"alg": FINGERPRINT_ALG}],
    }


def test_by_binding_watermark_payload(client: TestClient, g: Guardian, labeled: Path) -> None:
    row = _label_row(g)
    assert row.wm_payload is not None
    value = base64.b64encode(row.wm_payload.to_bytes(2, "big")).decode()
    r = client.get("/v1/matches/byBinding", params={"alg": WATERMARK_ALG, "value": value})
    assert r.status_code == 200, r.text
    assert r.json()["matches"][0]["manifestId"] == row.manifest_id


def test_by_binding_fingerprint_of_a_reencoded_copy(
    client: TestClient, g: Guardian, labeled: Path
) -> None:
    copy = decode_bytes(encode_bytes(decode_bytes(labeled.read_bytes()), OutputFormat.MP3))
    fp = fingerprint_of(copy)
    assert fp is not None
    value = base64.urlsafe_b64encode(fp.to_bytes()).decode().rstrip("=")
    r = client.get("/v1/matches/byBinding", params={"alg": FINGERPRINT_ALG, "value": value})
    assert r.status_code == 200, r.text
    (match,) = r.json()["matches"]
    assert match["manifestId"] == _label_row(g).manifest_id
    assert 0 < match["similarityScore"] <= 100


def test_by_binding_bad_input(client: TestClient) -> None:
    for params in (
        {"alg": "com.example.other", "value": "AAA="},
        {"alg": WATERMARK_ALG, "value": "!!!"},
        {"alg": WATERMARK_ALG, "value": "AAAA"},
        {"alg": FINGERPRINT_ALG, "value": "AAAA"},
    ):
        r = client.get("/v1/matches/byBinding", params=params)
        assert r.status_code == 400, (params, r.text)
    assert client.get("/v1/matches/byBinding", params={"alg": WATERMARK_ALG}).status_code == 422


def test_by_content_and_manifest_store(client: TestClient, g: Guardian, labeled: Path) -> None:
    stripped = encode_bytes(decode_bytes(labeled.read_bytes()), OutputFormat.FLAC)  # no manifest
    r = client.post("/v1/matches/byContent", files={"file": ("s.flac", stripped)})
    assert r.status_code == 200, r.text
    (match,) = r.json()["matches"]
    row = _label_row(g)
    assert match["manifestId"] == row.manifest_id
    store = client.get(f"/v1/manifests/{row.manifest_id}")
    assert store.status_code == 200
    assert store.headers["content-type"] == "application/c2pa"
    # The store is the one signed into the clip: c2pa reads it against the clip's bytes.
    with c2pa.Reader("audio/wav", io.BytesIO(labeled.read_bytes())) as embedded:
        assert row.manifest_id in embedded.json()
    assert len(store.content) > 500
    unrelated = write_clip(Path(str(labeled) + ".other.wav"), seed=77)
    r = client.post("/v1/matches/byContent", files={"file": ("o.wav", unrelated.read_bytes())})
    assert r.json() == {"matches": []}
    missing = client.get("/v1/manifests/urn:c2pa:nothing")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")


def test_trust_anchors_are_the_roots(client: TestClient) -> None:
    r = client.get("/v1/trust/anchors.pem")
    assert r.status_code == 200
    certs = x509.load_pem_x509_certificates(r.content)
    assert certs and all(
        c.extensions.get_extension_for_class(x509.BasicConstraints).value.ca for c in certs
    )
