"""Two engines, each on a data folder of its own, over one PostgreSQL and one S3 bucket: a
session paused on one resumes on the other with its variables and files, from the snapshot and
the file objects in S3. This is what lets any node of a cluster take up a paused session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from engine import Engine
from engine.sessions import SessionStatus

from ..support import cluster_services
from ..support.engines import make_settings

pytestmark = pytest.mark.cluster


@pytest.fixture
def shared(
    postgres_database: str,
    s3_bucket: tuple[cluster_services.S3, str],
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[dict[str, str]]:
    s3, bucket = s3_bucket
    for name, value in s3.env().items():
        monkeypatch.setenv(name, value)
    with cluster_services.throwaway_schema(postgres_database) as url:
        yield {"database_url": url, "files_url": f"s3://{bucket}/resume"}


async def test_a_session_paused_on_one_engine_resumes_on_another(
    tmp_path: Path, shared: dict[str, str]
) -> None:
    async with Engine(make_settings(tmp_path / "a", **shared)) as first:
        session = await first.session("t", owner="alice")
        upload = await first.files.create(b"a,b\n1,2\n", "in.csv", owner="alice")
        await session.add_file(upload.id)
        result = await session.execute(
            "import pandas as pd\ndf = pd.read_csv('/mnt/data/in.csv')\nsecret = 41\n"
            "open('/mnt/data/out.txt', 'w').write('written on a')"
        )
        assert result.error is None, result.error
        assert [o.path for o in result.outputs] == ["/mnt/data/out.txt"]
        # Another engine starting on the same database leaves this live session alone.
        async with Engine(make_settings(tmp_path / "b", **shared)) as second:
            assert second.sessions.info(session.id).notice is None
        assert (await session.execute("print(secret)")).stdout == "41\n"
        assert session.info.notice is None
        info = await session.pause()
        assert info.status is SessionStatus.PAUSED
        session_id = session.id
    assert not list((tmp_path / "a" / "engine" / "snapshots").glob("sess_*"))  # it is in S3

    async with Engine(make_settings(tmp_path / "b", **shared)) as second:
        taken = second.sessions.get(session_id, "alice")
        result = await taken.execute(
            "print(secret + 1, int(df.b.sum()), open('/mnt/data/out.txt').read(), "
            "open('/mnt/data/in.csv').read().splitlines()[0])"
        )
        assert result.error is None, result.error
        assert result.stdout == "42 2 written on a a,b\n"
        assert taken.status is SessionStatus.ACTIVE
        await taken.close()
