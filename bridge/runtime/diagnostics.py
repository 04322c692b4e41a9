"""GetDiagnostics, carried out: the pure machine of `bridge.core.diagnostics` in a thin asyncio shell.

The machine decides (the file name, the attempts, what to report); this shell does the I/O it asks
for, in order: it keeps the machine's record in the store (`job_records`, before acting), queues each
DiagnosticsStatusNotification in the outbox (both in `TransferRunner`), builds
the archive in a thread (`bridge.diagnostics.build_archive`: streamed, bounded memory) and uploads it
(`bridge.transfer.upload`), then tells the machine the outcome. One timer: the machine's deadline
(the next attempt after retryInterval). What goes into the archive is the daemon's to say
(`parts`, set when the daemon builds the charge point; alone, a charge point gives its status).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bridge.clock import Clock
from bridge.config import DiagnosticsConfig
from bridge.core.diagnostics import (
    CancelUpload,
    DiagnosticsReport,
    DiagnosticsStep,
    DiagnosticsUpload,
    Upload,
    UploadFailed,
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

log = logging.getLogger("bridge.diagnostics")

JOB = "diagnostics"  # its name in the store's job_records
TRANSFER_TIMEOUT_S = 60.0  # no data for this long in an upload: the attempt failed


class DiagnosticsRunner(TransferRunner[DiagnosticsUpload]):
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
            cp_id, clock, store, outbox, spawn, machine=DiagnosticsUpload(), job_name=JOB,
            action="DiagnosticsStatusNotification", log=log,
        )  # fmt: skip
        self._attempt: asyncio.Task[None] | None = None
        self._snapshot = snapshot
        self._uploads = uploads
        # Set by the daemon (`archive_from`); a charge point alone archives its status only.
        self._logs_dir: Path | None = None
        self._config_text: str | None = None
        self._work_dir = Path(tempfile.gettempdir())

    def archive_from(self, state_dir: Path, config_text: str | None) -> None:
        """Archives hold the window of the log files in state_dir/logs and the configuration file
        (redacted when archived); they are built in state_dir/diagnostics."""
        self._logs_dir, self._config_text = state_dir / LOGS_DIR, config_text
        self._work_dir = state_dir / "diagnostics"

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

    def snapshot(self) -> Any:
        return self._machine.snapshot()

    def restore(self, record: str | None) -> None:
        """At start, before the charge point runs: the machine as the last run left it."""
        step = self._restored(record, DiagnosticsUpload.from_record)
        if step is not None:
            self._carry_out(step)

    # -- the effects ----------------------------------------------------------------------------
    def _carry_out(self, step: DiagnosticsStep) -> None:
        if step.changed:
            self._save()
        for effect in step.effects:
            if isinstance(effect, DiagnosticsReport):
                self._report(str(effect.status), effect.reason)
            elif isinstance(effect, Upload):
                self._attempt = self._spawn(self._upload(effect), f"diagnostics upload {effect.job}")
            elif isinstance(effect, CancelUpload):
                if self._attempt is not None:
                    self._attempt.cancel()
            elif isinstance(effect, UploadSuperseded):
                log.info("%s: a new GetDiagnostics replaces the upload to %s", self._cp_id,
                         masked(effect.previous.location))  # fmt: skip
        self._arm()

    async def _upload(self, effect: Upload) -> None:
        # Imported when first used: aiohttp's import takes ~0.1 s of the start otherwise.
        from bridge.transfer import TransferError, upload

        request = effect.request
        archive = self._work_dir / request.file_name
        try:
            self._work_dir.mkdir(parents=True, exist_ok=True)
            snapshot = self._snapshot()
            store = await self._store.run(self._store.summary, self._cp_id)
            parts = ArchiveParts(
                logs_dir=self._logs_dir, start=_moment(request.start_time), stop=_moment(request.stop_time),
                config_text=self._config_text, status=dataclasses.asdict(snapshot), store=store,
                devices=devices_json(snapshot),
            )  # fmt: skip
            await asyncio.to_thread(build_archive, archive, parts)
            post = request.location.lower().startswith(tuple(p.lower() for p in self._uploads.post_to))
            await upload(archive, request.location, method="POST" if post else "PUT",
                         field=self._uploads.post_field, timeout_s=TRANSFER_TIMEOUT_S)  # fmt: skip
        except TransferError as exc:
            event: UploadSucceeded | UploadFailed = UploadFailed(effect.job, str(exc))
        except OSError as exc:
            event = UploadFailed(effect.job, f"the archive could not be made: {exc.strerror or exc}")
        except Exception as exc:  # a bug or the store failing: the attempt fails, the machine goes on
            log.exception("%s: making the diagnostics archive failed", self._cp_id)
            event = UploadFailed(effect.job, f"the archive could not be made: {exc!r}")
        else:
            event = UploadSucceeded(effect.job)
        finally:
            with contextlib.suppress(OSError):
                archive.unlink()
        if isinstance(event, UploadFailed):
            log.warning(
                "%s: diagnostics upload attempt %d failed: %s", self._cp_id, effect.attempt, event.reason
            )
        self._carry_out(self._machine.handle(event, self._now()))


def configuration_text(path: str) -> str | None:
    """The configuration file as an archive holds it (redacted there); None when it is not a file."""
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None  # a configuration given as text (tests), or a file gone since


def _moment(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC)
