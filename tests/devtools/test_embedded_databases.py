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
from devtools.processes import free_port


async def redis_pings(url: str) -> bool:
    client = redis.asyncio.Redis.from_url(url)
    try:
        return bool(await client.ping())
    finally:
        await client.aclose()


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
            assert await redis_pings(server.url)
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


class TestLoopbackTcp:
    """With a port, both servers listen on 127.0.0.1 (the appliance's host side), not on a socket."""

    async def test_redis_on_a_port(self, tmp_path: Path) -> None:
        port = free_port()
        server = start_embedded_redis(tmp_path / "redis", port=port)
        try:
            assert server.url == f"redis://127.0.0.1:{port}/0"
            assert start_embedded_redis(tmp_path / "redis", port=port) is server
            with pytest.raises(EmbeddedStartError, match="other options"):
                start_embedded_redis(tmp_path / "redis")
            assert await redis_pings(server.url)
        finally:
            server.stop()
        with pytest.raises(redis.exceptions.ConnectionError):
            await redis_pings(server.url)

    @pytest.mark.slow
    async def test_postgres_on_a_port_with_settings(self) -> None:
        root = Path(tempfile.mkdtemp(prefix="memwal-embedded-test-"))
        port = free_port()
        try:
            server = start_embedded_postgres(root / "data", port=port, settings={"fsync": "off"})
            try:
                assert server.url == f"postgresql://postgres@127.0.0.1:{port}/postgres"
                connection = await asyncpg.connect(server.url)
                try:
                    assert await connection.fetchval("SHOW fsync") == "off"
                finally:
                    await connection.close()
            finally:
                server.stop()
        finally:
            shutil.rmtree(root, ignore_errors=True)

    def test_settings_are_checked(self, tmp_path: Path) -> None:
        with pytest.raises(EmbeddedStartError, match="invalid PostgreSQL setting"):
            start_embedded_postgres(tmp_path / "data", settings={"fsync": "off; DROP"})
