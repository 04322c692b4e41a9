"""GetDiagnostics, carried out: the pure machine of `bridge.core.diagnostics` in a thin asyncio shell.

The machine decides (the file name, the attempts, what to report); this shell does the I/O it asks
for, in order: it keeps the machine's record in the store (`job_records`, before acting), queues each
DiagnosticsStatusNotification in the outbox (both in `TransferRunner`), builds
the archive in a thread (`bridge.diagnostics.build_archive`: streamed, bounded memory) and uploads it
(`bridge.transfer.upload`), then tells the machine the outcome. One timer: the machine's deadline
(the next attempt after retryInterval). What goes into the archive is the daemon's to say
(`parts`, set when the daemon builds the charge point; alone, a charge point gives its status).

`UploadRunner` is the shell of any upload machine (`UploadJob`): GetLog's (`runtime/logs.py`) makes
its file another way, names a failure in its own words and says the requestId with every status.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import shutil
import tempfile
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bridge.clock import Clock
from bridge.config import DiagnosticsConfig
from bridge.core.diagnostics import (
    CancelUpload,
    DiagnosticsReport,
    DiagnosticsRequest,
    DiagnosticsStep,
    DiagnosticsUpload,
    Upload,
    UploadFailed,
    UploadJob,
    UploadSucceeded,
    UploadSuperseded,
)
from bridge.core.transfer_job import masked
from bridge.diagnostics import LOGS_DIR, ArchiveParts, build_archive
from bridge.outbox import Outbox
from bridge.runtime.effects import Spawn
from bridge.runtime.snapshot import ChargePointSnapshot, devices_json
from bridge.runtime.transfer_runner import TransferRunner
from bridge.store import Store

if TYPE_CHECKING:  # bridge.transfer imports aiohttp (~0.1 s of the start): imported when first used
    from bridge.transfer import TransferError

log = logging.getLogger("bridge.diagnostics")

JOB = "diagnostics"  # its name in the store's job_records
TRANSFER_TIMEOUT_S = 60.0  # no data for this long in an upload: the attempt failed
Reader = Callable[[Mapping[str, Any], float], tuple[Any, DiagnosticsStep]]


class UploadRunner(TransferRunner[UploadJob[Any]]):
    """Carries out an upload machine's effects; a subclass makes the file (`_make`)."""

    FILE = "archive"  # what `_make` makes, for messages

    def __init__(
        self, cp_id: str, clock: Clock, store: Store, outbox: Outbox, spawn: Spawn, *,
        machine: UploadJob[Any], read: Reader, job_name: str, action: str, uploads: DiagnosticsConfig,
        log: logging.Logger,
    ) -> None:  # fmt: skip
        super().__init__(
            cp_id, clock, store, outbox, spawn, machine=machine, job_name=job_name, action=action, log=log
        )
        self._read = read
        self._uploads = uploads
        self._attempt: asyncio.Task[None] | None = None

    def snapshot(self) -> Any:
        return self._machine.snapshot()

    def restore(self, record: str | None) -> None:
        """At start, before the charge point runs: the machine as the last run left it."""
        step = self._restored(record, self._read)
        if step is not None:
            self._carry_out(step)

    # -- what a subclass says ---------------------------------------------------------------------
    def _work_dir(self) -> Path:
        raise NotImplementedError

    async def _make(self, request: DiagnosticsRequest, dest: Path) -> None:
        """Write the file to upload at `dest`."""
        raise NotImplementedError

    def _failed(self, effect: Upload, exc: TransferError) -> UploadFailed:
        """The machine's event for an upload that failed."""
        return UploadFailed(effect.job, str(exc))

    # -- the effects ----------------------------------------------------------------------------
    def _carry_out(self, step: DiagnosticsStep) -> None:
        if step.changed:
            self._save()
        for effect in step.effects:
            if isinstance(effect, DiagnosticsReport):
                self._report(str(effect.status), effect.reason, effect.request_id)
            elif isinstance(effect, Upload):
                self._attempt = self._spawn(self._upload(effect), f"{self._job_name} upload {effect.job}")
            elif isinstance(effect, CancelUpload):
                if self._attempt is not None:
                    self._attempt.cancel()
            elif isinstance(effect, UploadSuperseded):
                self._log.info("%s: a new request replaces the %s upload to %s", self._cp_id, self._job_name,
                         masked(effect.previous.location))  # fmt: skip
        self._arm()

    async def _upload(self, effect: Upload) -> None:
        from bridge.transfer import TransferError, upload
        from bridge.transfer.urls import parse

        request = effect.request
        # A folder per job: a request that replaces a running one within the same second has the
        # same file name, and the replaced attempt's clean-up must not take the new one's file.
        spool = self._work_dir() / f"{self._job_name}-{effect.job}"
        made = spool / request.file_name
        try:
            parse(request.location)  # a location we cannot send to fails before the file is made
            spool.mkdir(parents=True, exist_ok=True)
            await self._make(request, made)
            post = request.location.lower().startswith(tuple(p.lower() for p in self._uploads.post_to))
            await upload(made, request.location, method="POST" if post else "PUT",
                         field=self._uploads.post_field, timeout_s=TRANSFER_TIMEOUT_S)  # fmt: skip
        except TransferError as exc:
            event: UploadSucceeded | UploadFailed = self._failed(effect, exc)
        except OSError as exc:
            event = UploadFailed(effect.job, f"the {self.FILE} could not be made: {exc.strerror or exc}")
        except Exception as exc:  # a bug or the store failing: the attempt fails, the machine goes on
            self._log.exception("%s: making the %s file failed", self._cp_id, self._job_name)
            event = UploadFailed(effect.job, f"the {self.FILE} could not be made: {exc!r}")
        else:
            event = UploadSucceeded(effect.job)
        finally:
            with contextlib.suppress(OSError):
                made.unlink()
            with contextlib.suppress(OSError):
                spool.rmdir()
        if isinstance(event, UploadFailed):
            self._log.warning(
                "%s: %s upload attempt %d failed: %s",
                self._cp_id,
                self._job_name,
                effect.attempt,
                event.reason,
            )
        self._carry_out(self._machine.handle(event, self._now()))
        # What a replaced attempt's thread finished after its clean-up (it was cancelled), or a run that
        # ended mid-attempt, left behind goes now: one clearing per attempt, at its end.
        await asyncio.to_thread(_clear_spools, self._work_dir(), self._job_name)


class DiagnosticsRunner(UploadRunner):
    def __init__(
        self,
        cp_id: str,
        clock: Clock,
        store: Store,
        outbox: Outbox,
        spawn: Spawn,
        snapshot: Callable[[], ChargePointSnapshot],
        uploads: DiagnosticsConfig,
    ) -> None:
        super().__init__(
            cp_id, clock, store, outbox, spawn, machine=DiagnosticsUpload(),
            read=DiagnosticsUpload.from_record, job_name=JOB, action="DiagnosticsStatusNotification",
            uploads=uploads, log=log,
        )  # fmt: skip
        self._snapshot = snapshot
        # Set by the daemon (`archive_from`); a charge point alone archives its status only.
        self._logs_dir: Path | None = None
        self._config_text: str | None = None
        self.work_dir = Path(tempfile.gettempdir())  # where archives are built (and GetLog's files)

    def archive_from(self, state_dir: Path, config_text: str | None) -> None:
        """Archives hold the window of the log files in state_dir/logs and the configuration file
        (redacted when archived); they are built in state_dir/diagnostics."""
        self._logs_dir, self._config_text = state_dir / LOGS_DIR, config_text
        self.work_dir = state_dir / "diagnostics"

    # -- what the handlers and the trigger ask ------------------------------------------------
    def request(
        self, location: str, retries: int | None, retry_interval_s: float | None,
        start_time: float | None, stop_time: float | None,
    ) -> str:  # fmt: skip
        """GetDiagnostics: the fileName to answer; the upload starts once the answer is sent. ValueError
        for a request the machine refuses (an empty location, startTime after stopTime)."""
        name, step = self._machine.request(
            self._cp_id, location, retries, retry_interval_s, start_time, stop_time, self._now()
        )
        self._carry_out(step)
        return name

    def trigger_status(self) -> str:
        """DiagnosticsStatusNotification's status for a TriggerMessage: Idle only when nothing runs."""
        return str(self._machine.trigger_status())

    async def build(self, dest: Path, start: float | None, stop: float | None) -> None:
        """The diagnostics archive of the window [start, stop] (epoch seconds, None: open) at `dest`
        (GetDiagnostics, and GetLog's DiagnosticsLog)."""
        snapshot = self._snapshot()
        store = await self._store.run(self._store.summary, self._cp_id)
        parts = ArchiveParts(
            logs_dir=self._logs_dir, start=moment(start), stop=moment(stop), config_text=self._config_text,
            status=dataclasses.asdict(snapshot), store=store, devices=devices_json(snapshot),
        )  # fmt: skip
        await asyncio.to_thread(build_archive, dest, parts)

    def _work_dir(self) -> Path:
        return self.work_dir

    async def _make(self, request: DiagnosticsRequest, dest: Path) -> None:
        await self.build(dest, request.start_time, request.stop_time)


def configuration_text(path: str) -> str | None:
    """The configuration file as an archive holds it (redacted there); None when it is not a file."""
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None  # a configuration given as text (tests), or a file gone since


def moment(epoch: float | None) -> datetime | None:
    """Epoch seconds as an aware datetime (a window's end); None stays None."""
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC)


def _clear_spools(work_dir: Path, job_name: str) -> None:
    """Remove what replaced uploads of this runner left: a cancelled attempt's thread may finish its
    file after the attempt's clean-up ran (one attempt at a time: none of them is in use now)."""
    if not work_dir.is_dir() or work_dir == Path(tempfile.gettempdir()):  # only a folder of our own
        return
    for folder in work_dir.glob(f"{job_name}-*"):
        shutil.rmtree(folder, ignore_errors=True)
