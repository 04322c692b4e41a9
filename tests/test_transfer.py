"""File transfer (bridge.transfer) against real servers on 127.0.0.1: pyftpdlib for FTP and FTPS
(a test CA made here), an aiohttp file server for HTTP and HTTPS that can misbehave."""

from __future__ import annotations

import asyncio
import gc
import hashlib
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

import pytest

from bridge.transfer import Reason, TransferError, download, http_client, masked, supported_protocols, upload
from bridge.transfer.files import PartFile
from bridge.transfer.urls import parse
from tests.helpers.ftp_server import ftp_server
from tests.helpers.http_files import http_files
from tests.helpers.pki import Pki, make_pki
from tests.processes import ROOT, free_port

SIZE = 3 * 1024 * 1024 + 4321  # several reads and writes, not a multiple of any block


@pytest.fixture
def content() -> bytes:
    return os.urandom(SIZE)


@pytest.fixture
def served(tmp_path: Path, content: bytes) -> Path:
    root = tmp_path / "served"
    root.mkdir()
    (root / "fw.bin").write_bytes(content)
    return root


@pytest.fixture
def dest_dir(tmp_path: Path) -> Path:
    path = tmp_path / "dest"
    path.mkdir()
    return path


@pytest.fixture
def uploads(tmp_path: Path) -> Path:
    path = tmp_path / "uploads"
    path.mkdir()
    return path


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    path = tmp_path / "pki"
    path.mkdir()
    return make_pki(path)


def names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def assert_downloaded(dest_dir: Path, content: bytes, result_sha: str) -> None:
    # Only the finished file: no temporary left beside it.
    assert names(dest_dir) == ["fw.bin"]
    assert (dest_dir / "fw.bin").read_bytes() == content
    assert result_sha == hashlib.sha256(content).hexdigest()


async def failure(url: str, dest_dir: Path, **kwargs: object) -> TransferError:
    """The TransferError of a download that must fail, after checking that it left nothing."""
    with pytest.raises(TransferError) as caught:
        await download(url, dest_dir / "fw.bin", **{"timeout_s": 5.0, **kwargs})  # type: ignore[arg-type]
    assert names(dest_dir) == [], "a failed download left a file"
    return caught.value


async def test_http_download_streams_to_the_file(served: Path, uploads: Path, dest_dir: Path, content: bytes):
    async with http_files(served, uploads) as site:
        result = await download(f"{site.base}/files/fw.bin", dest_dir / "fw.bin", timeout_s=5)
    assert result.size == SIZE and result.path == dest_dir / "fw.bin"
    assert_downloaded(dest_dir, content, result.sha256)


async def test_https_download_trusts_the_configured_ca_only(
    served: Path, uploads: Path, dest_dir: Path, content: bytes, pki: Pki
):
    async with http_files(served, uploads, ssl_context=pki.server_context()) as site:
        url = f"{site.base}/files/fw.bin"
        error = await failure(url, dest_dir)  # the system's CA store does not know the test CA
        assert error.reason is Reason.TLS
        result = await download(url, dest_dir / "fw.bin", timeout_s=5, ssl_context=pki.client_context())
    assert_downloaded(dest_dir, content, result.sha256)


@pytest.mark.parametrize("tls", [False, True], ids=["ftp", "ftps"])
async def test_ftp_download(served: Path, dest_dir: Path, content: bytes, pki: Pki, tls: bool):
    with ftp_server(served, pki=pki if tls else None) as site:
        url = site.url("fw.bin")
        if tls:
            assert (await failure(url, dest_dir)).reason is Reason.TLS
        result = await download(url, dest_dir / "fw.bin", timeout_s=5, ssl_context=pki.client_context())
    assert_downloaded(dest_dir, content, result.sha256)


async def test_not_found(served: Path, uploads: Path, dest_dir: Path):
    async with http_files(served, uploads) as site:
        error = await failure(f"{site.base}/files/nothing.bin", dest_dir)
    assert error.reason is Reason.NOT_FOUND and "404" in str(error)
    with ftp_server(served) as ftp:
        error = await failure(ftp.url("nothing.bin"), dest_dir)
    assert error.reason is Reason.NOT_FOUND and "550" in str(error)


@pytest.mark.parametrize("scheme", ["http", "https", "ftp", "ftps"])
async def test_refused_connection(dest_dir: Path, scheme: str):
    error = await failure(f"{scheme}://u:pw@127.0.0.1:{free_port()}/fw.bin", dest_dir)
    assert error.reason is Reason.REFUSED


async def test_wrong_ftp_password_is_a_refused_login_and_never_shown(
    served: Path, dest_dir: Path, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.DEBUG)
    with ftp_server(served, password="right-one") as site:
        error = await failure(site.url("fw.bin", password="wrong-Pa55"), dest_dir)
    assert error.reason is Reason.LOGIN_REFUSED
    assert "cp:***@127.0.0.1" in str(error)
    assert "wrong-Pa55" not in str(error)
    assert caplog.records, "the download logs what it does"
    assert not [r for r in caplog.records if "wrong-Pa55" in r.getMessage()]


async def test_password_never_in_messages_or_logs(
    served: Path, uploads: Path, dest_dir: Path, pki: Pki, caplog: pytest.LogCaptureFixture
):
    secret = "Top-s3cret"
    caplog.set_level(logging.DEBUG)
    messages = []
    with ftp_server(served, password=secret) as ftp, ftp_server(served, password=secret, pki=pki) as ftps:
        await download(ftp.url("fw.bin"), uploads / "fw.bin", timeout_s=5)
        await upload(uploads / "fw.bin", ftps.url(""), timeout_s=5, ssl_context=pki.client_context())
        messages.append(str(await failure(ftp.url("none.bin"), dest_dir)))  # 550
        messages.append(str(await failure(ftps.url("fw.bin"), dest_dir)))  # an unknown CA
    async with http_files(served, uploads) as site:
        url = site.base.replace("http://", f"http://user:{secret}@") + "/files/none.bin"
        messages.append(str(await failure(url, dest_dir)))
    messages.append(str(await failure(f"ftp://cp:{secret}@127.0.0.1:{free_port()}/x", dest_dir)))
    assert len(messages) == 4 and all("***@" in m for m in messages), messages
    logged = [r.getMessage() for r in caplog.records]
    assert any("cp:***@" in line for line in logged)
    assert not [m for m in messages + logged if secret in m]


async def test_cut_off_leaves_no_complete_looking_file(served: Path, uploads: Path, dest_dir: Path):
    async with http_files(served, uploads) as site:
        error = await failure(f"{site.base}/cut/fw.bin", dest_dir)
    assert error.reason is Reason.CUT_OFF


class WatchedPart(PartFile):
    """A PartFile that records the batches it is given and whether two writes ever overlapped;
    with `hold`, its first write blocks until `release` is set."""

    def __init__(self, dest: Path, *, hold: bool = False) -> None:
        super().__init__(dest, None)
        self.batches: list[list[int]] = []  # the chunk sizes of each write
        self.overlapped = False
        self.writing = threading.Event()
        self.release = threading.Event()
        self.finished = threading.Event()
        self._active = 0
        self.guard = threading.Lock()
        if not hold:
            self.release.set()

    def write_chunks(self, chunks: Sequence[bytes]) -> None:
        with self.guard:
            self._active += 1
            self.overlapped |= self._active > 1
        self.batches.append([len(chunk) for chunk in chunks])
        self.writing.set()
        self.release.wait(10)
        try:
            super().write_chunks(chunks)
        finally:
            with self.guard:
                self._active -= 1
            self.finished.set()


async def test_http_download_writes_bounded_batches_one_at_a_time(
    served: Path, uploads: Path, dest_dir: Path, content: bytes
):
    part = WatchedPart(dest_dir / "fw.bin")
    async with http_files(served, uploads) as site:
        url = f"{site.base}/files/fw.bin"
        await http_client.fetch(parse(url), url, part, timeout_s=5, context=None)
    await asyncio.to_thread(part.commit)
    assert_downloaded(dest_dir, content, part.sha256)
    assert not part.overlapped, "two writes at once: the bytes' order and the memory bound are at risk"
    # Each batch: about BATCH bytes of the chunks as received (never joined into one copy), so that
    # the memory held is the batch being written plus the one being gathered.
    largest_chunk = 256 * 1024  # asyncio's read size
    assert len(part.batches) >= SIZE // http_client.BATCH
    assert all(sum(batch) < http_client.BATCH + largest_chunk for batch in part.batches)
    assert all(max(batch) <= largest_chunk for batch in part.batches)
    assert sum(map(sum, part.batches)) == SIZE


async def test_cancelled_http_download_waits_for_its_write_and_leaves_nothing(
    served: Path, uploads: Path, dest_dir: Path
):
    part = WatchedPart(dest_dir / "fw.bin", hold=True)
    async with http_files(served, uploads) as site:
        url = f"{site.base}/files/fw.bin"
        task = asyncio.create_task(http_client.fetch(parse(url), url, part, timeout_s=5, context=None))
        assert await asyncio.to_thread(part.writing.wait, 5), "no write started"
        task.cancel()
        await asyncio.sleep(0.2)
        assert not task.done(), "the download ended while its thread still wrote the file"
        part.release.set()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert part.finished.is_set()
    part.discard()
    assert names(dest_dir) == []


@pytest.mark.parametrize("scheme", ["http", "ftp"])
async def test_too_large_is_refused_and_nothing_kept(
    served: Path, uploads: Path, dest_dir: Path, scheme: str
):
    async with http_files(served, uploads) as site:
        with ftp_server(served) as ftp:
            url = ftp.url("fw.bin") if scheme == "ftp" else f"{site.base}/files/fw.bin"
            error = await failure(url, dest_dir, max_bytes=SIZE - 1)
            assert error.reason is Reason.TOO_LARGE
            result = await download(url, dest_dir / "fw.bin", timeout_s=5, max_bytes=SIZE)
    assert result.size == SIZE


async def test_slow_server_times_out(served: Path, uploads: Path, dest_dir: Path):
    async with http_files(served, uploads) as site:
        started = asyncio.get_running_loop().time()
        error = await failure(f"{site.base}/slow/fw.bin", dest_dir, timeout_s=0.5)
        elapsed = asyncio.get_running_loop().time() - started
    assert error.reason is Reason.TIMEOUT
    assert 0.5 <= elapsed < 3


async def test_slow_ftp_server_times_out(served: Path, dest_dir: Path):
    with ftp_server(served, send_limit=1) as site:  # one block, then a stall of hours
        started = asyncio.get_running_loop().time()
        error = await failure(site.url("fw.bin"), dest_dir, timeout_s=0.5)
        elapsed = asyncio.get_running_loop().time() - started
    assert error.reason is Reason.TIMEOUT
    assert 0.5 <= elapsed < 3


async def test_cancelled_ftp_download_stops_its_thread_and_leaves_nothing(served: Path, dest_dir: Path):
    with ftp_server(served, send_limit=256 * 1024) as site:  # ~13 s for the whole file
        task = asyncio.create_task(download(site.url("fw.bin"), dest_dir / "fw.bin", timeout_s=30))
        # No event to wait for: the temporary file growing says the transfer is under way.
        while not [p for p in dest_dir.iterdir() if p.stat().st_size > 0]:  # noqa: ASYNC110, ASYNC240
            await asyncio.sleep(0.01)
        started = asyncio.get_running_loop().time()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert asyncio.get_running_loop().time() - started < 2, "the thread waited for its socket timeout"
    assert names(dest_dir) == []


async def test_a_transfer_cancelled_while_the_server_keeps_silent_ends_at_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # What earlier tests in this process left to the garbage collector is theirs, not this test's.
    gc.collect()
    caplog.clear()
    # A server that takes the connection and never greets: the thread waits in ftplib's connect().
    listener = socket.create_server(("127.0.0.1", 0))
    try:
        archive = tmp_path / "diag.tar.gz"
        archive.write_bytes(b"x" * 1000)
        url = f"ftp://cp:pw@127.0.0.1:{listener.getsockname()[1]}/"
        task = asyncio.create_task(upload(archive, url, timeout_s=30))
        await asyncio.sleep(0.3)
        started = asyncio.get_running_loop().time()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert asyncio.get_running_loop().time() - started < 2, "the thread waited for its socket timeout"
    finally:
        listener.close()
    # The thread's own error (its socket shut under it) was retrieved, not left to the task's
    # finaliser, whose traceback formatting inside the garbage collector breaks CPython 3.11's ast.
    gc.collect()
    assert "never retrieved" not in caplog.text


_FULL_DISK_SCRIPT = """
import asyncio, json, os, sys
from pathlib import Path
from bridge.transfer import TransferError, download
async def main():
    try:
        await download(sys.argv[1], Path(sys.argv[2]) / "fw.bin", timeout_s=5)
        print(json.dumps({"reason": None}))
    except TransferError as exc:
        print(json.dumps({"reason": exc.reason.value, "left": os.listdir(sys.argv[2])}))
asyncio.run(main())
"""


async def _can_unshare() -> bool:
    proc = await asyncio.create_subprocess_exec("unshare", "-rm", "true", stderr=subprocess.DEVNULL)
    return await proc.wait() == 0


async def test_full_disk_is_reported_and_the_partial_file_removed(
    served: Path, uploads: Path, tmp_path: Path
):
    """A 1 MiB tmpfs, mounted in a private mount namespace of a child (no root needed on the host)."""
    if shutil.which("unshare") is None or not await _can_unshare():
        pytest.skip("no unshare -rm here: cannot mount a tiny tmpfs")
    disk = tmp_path / "tiny"
    disk.mkdir()
    async with http_files(served, uploads) as site:
        shell = 'mount -t tmpfs -o size=1m none "$1" && exec "$2" -c "$3" "$4" "$1"'
        proc = await asyncio.create_subprocess_exec(
            "unshare", "-rm", "sh", "-c", shell, "sh", str(disk), sys.executable, _FULL_DISK_SCRIPT,
            f"{site.base}/files/fw.bin", cwd=ROOT, stdout=subprocess.PIPE,
        )  # fmt: skip
        out, _ = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0
    assert json.loads(out) == {"reason": "disk full", "left": []}


@pytest.mark.parametrize("scheme", ["ftp", "ftps"])
async def test_ftp_upload_stores_into_the_url_directory(tmp_path: Path, uploads: Path, pki: Pki, scheme: str):
    archive = tmp_path / "diagnostics-1.tar.gz"
    archive.write_bytes(os.urandom(SIZE))
    (uploads / "diag").mkdir()
    with ftp_server(uploads, pki=pki if scheme == "ftps" else None) as site:
        await upload(archive, site.url("diag/"), timeout_s=5, ssl_context=pki.client_context())
    assert (uploads / "diag" / archive.name).read_bytes() == archive.read_bytes()


async def test_http_put_and_multipart_post(served: Path, uploads: Path, tmp_path: Path, pki: Pki):
    archive = tmp_path / "diagnostics 2.tar.gz"  # a space: the PUT URL quotes the name
    archive.write_bytes(os.urandom(SIZE))
    async with http_files(served, uploads, ssl_context=pki.server_context()) as site:
        await upload(archive, f"{site.base}/upload/", timeout_s=5, ssl_context=pki.client_context())
        assert (uploads / archive.name).read_bytes() == archive.read_bytes()
        (uploads / archive.name).unlink()
        await upload(
            archive, f"{site.base}/upload", method="POST", timeout_s=5, ssl_context=pki.client_context()
        )
        assert (uploads / archive.name).read_bytes() == archive.read_bytes()
        assert site.posted_fields == ["file"]
        with pytest.raises(TransferError) as caught:
            await upload(archive, f"{site.base}/nowhere/", timeout_s=5, ssl_context=pki.client_context())
    assert caught.value.reason is Reason.NOT_FOUND


async def test_bad_locations_are_named(tmp_path: Path):
    with pytest.raises(TransferError) as caught:
        await download("sftp://u:pw@host/fw.bin", tmp_path / "fw.bin", timeout_s=1)
    assert caught.value.reason is Reason.UNSUPPORTED
    assert "'sftp'" in str(caught.value) and "ftps://" in str(caught.value) and "pw" not in str(caught.value)
    with pytest.raises(TransferError) as caught:
        await download("ftp://host/a%0D%0ADELE%20x", tmp_path / "fw.bin", timeout_s=1)
    assert caught.value.reason is Reason.UNSUPPORTED  # no command injected through a decoded CR/LF
    with pytest.raises(TransferError) as caught:
        await upload(tmp_path / "absent.tar.gz", "ftp://host/", timeout_s=1)
    assert caught.value.reason is Reason.LOCAL_FILE


def test_masked_and_supported_protocols():
    assert (
        masked("see ftp://cp:pa:ss@h:21/x and https://u:p@h/y")
        == "see ftp://cp:***@h:21/x and https://u:***@h/y"
    )
    assert masked("http://h/x@y") == "http://h/x@y"
    assert supported_protocols() == ["FTP", "FTPS", "HTTP", "HTTPS"]
