from __future__ import annotations

import asyncio
import shutil
import tempfile
from pathlib import Path

import asyncpg
import pytest
import redis.asyncio
import redis.exceptions

from devtools.embedded_databases import EmbeddedStartError, start_embedded_postgres, start_embedded_redis


class TestEmbeddedRedis:
    async def test_start_is_idempotent_and_stop_is_clean(self, tmp_path: Path) -> None:
        server = start_embedded_redis(tmp_path / "redis")
        try:
            assert server.url.startswith("unix://")
            assert start_embedded_redis(tmp_path / "redis") is server
            client = redis.asyncio.Redis.from_url(server.url)
            try:
                assert await client.set("k", "v") is True
                assert await client.get("k") == b"v"
            finally:
                await client.aclose()
        finally:
            server.stop()
        server.stop()  # second stop is a no-op
        assert not Path(server.url.removeprefix("unix://")).exists()
        with pytest.raises(redis.exceptions.ConnectionError, match="No such file"):
            probe = redis.asyncio.Redis.from_url(server.url)
            try:
                await probe.ping()
            finally:
                await probe.aclose()

    async def test_restart_after_stop_gives_a_working_server(self, tmp_path: Path) -> None:
        start_embedded_redis(tmp_path / "redis").stop()
        server = start_embedded_redis(tmp_path / "redis")
        try:
            client = redis.asyncio.Redis.from_url(server.url)
            try:
                assert await client.ping() is True
            finally:
                await client.aclose()
        finally:
            server.stop()

    def test_unusable_directory_is_a_start_error(self, tmp_path: Path) -> None:
        blocker = tmp_path / "file"
        blocker.write_text("not a directory")
        with pytest.raises(EmbeddedStartError, match="cannot create data directory"):
            start_embedded_redis(blocker / "redis")


@pytest.mark.slow
class TestEmbeddedPostgres:
    async def test_start_is_idempotent_and_has_pgvector(self) -> None:
        # Outside pytest's basetemp, for the reason given in tests/conftest.py.
        root = Path(tempfile.mkdtemp(prefix="memwal-embedded-test-"))
        try:
            server = start_embedded_postgres(root / "data")
            try:
                assert start_embedded_postgres(root / "data") is server
                connection = await asyncpg.connect(server.url)
                try:
                    await connection.execute("CREATE EXTENSION IF NOT EXISTS vector")
                    version = await connection.fetchval("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
                finally:
                    await connection.close()
                assert tuple(int(part) for part in version.split(".")[:2]) >= (0, 8)
            finally:
                server.stop()
            server.stop()
            assert not (root / "data" / "postmaster.pid").exists()
            with pytest.raises(OSError):
                await asyncio.wait_for(asyncpg.connect(server.url), timeout=5)
        finally:
            shutil.rmtree(root, ignore_errors=True)

    def test_missing_parent_that_cannot_be_created_is_a_start_error(self, tmp_path: Path) -> None:
        blocker = tmp_path / "file"
        blocker.write_text("not a directory")
        with pytest.raises(EmbeddedStartError, match="cannot create data directory"):
            start_embedded_postgres(blocker / "sub" / "data")
