"""Writers in several processes' worth of engines take turns: the audit chain never forks."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from guardian.app import create_api_key, open_guardian, revoke_api_key, verify_audit
from guardian.config import Settings
from tests.conftest import postgres_schema


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    if request.param == "sqlite":
        yield None
        return
    with postgres_schema() as url:
        yield url


def test_concurrent_writers_keep_one_chain(tmp_path: Path, database_url: str | None) -> None:
    settings = Settings(home=tmp_path / "h", database_url=database_url, master_key=None)
    first = open_guardian(settings)
    first.ensure_keys()
    # Two Guardians with their own engines stand for two server workers.
    guardians = [first, open_guardian(settings)]

    keys = [
        create_api_key(first, name=f"k{i}", organization="Acme", scopes=["label"]).info.id
        for i in range(15)
    ]

    def write(i: int) -> None:
        g = guardians[i % 2]
        if i % 3:  # a transaction that writes first
            create_api_key(g, name=f"n{i}", organization="Acme", scopes=["label"])
        else:  # one that reads first, then writes
            revoke_api_key(g, keys[i // 3])

    with ThreadPoolExecutor(max_workers=6) as pool:
        list(pool.map(write, range(45)))
    report = verify_audit(first)
    assert report, report.problems
    assert report.entries >= 15 + 45
    for g in guardians:
        g.engine.dispose()
