"""GetLog (security white paper N01), carried out: the upload machine (`core.diagnostics.LogUpload`)
in the shell GetDiagnostics has (`runtime.diagnostics.UploadRunner`), so that both are one piece of
code: the record in the store's job_records, the deadline, the statuses through the outbox.

What is uploaded: a DiagnosticsLog is the GetDiagnostics archive of the window (built by the
diagnostics runner); a SecurityLog is the lines of the charge point's security log files in the
window, one text file (each line starts with its time, so `lines_between` selects them as it does the
bridge's own logs). Every LogStatusNotification carries the GetLog's requestId.

How a failed upload is reported: the location or its rights, which no retry mends, end the job at
once (a login refused: PermissionDenied; a scheme we do not speak: NotSupportedOperation; a location
that is not a URL: BadMessage); any other failure is retried, then UploadFailure.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from bridge.clock import Clock
from bridge.config import DiagnosticsConfig
from bridge.core.diagnostics import DiagnosticsRequest, LogStatus, LogUpload, Upload, UploadFailed
from bridge.diagnostics import lines_between
from bridge.outbox import Outbox
from bridge.runtime.diagnostics import DiagnosticsRunner, UploadRunner, moment
from bridge.runtime.effects import Spawn
from bridge.security.security_log import ChargePointLog
from bridge.store import Store

if TYPE_CHECKING:
    from bridge.transfer import TransferError

log = logging.getLogger("bridge.logs")

JOB = "log"  # its name in the store's job_records
ACTION = "LogStatusNotification"


class LogRunner(UploadRunner):
    FILE = "log file"

    def __init__(
        self,
        cp_id: str,
        clock: Clock,
        store: Store,
        outbox: Outbox,
        spawn: Spawn,
        *,
        diagnostics: DiagnosticsRunner,
        uploads: DiagnosticsConfig,
        security_log: Callable[[], ChargePointLog | None],
    ) -> None:
        super().__init__(
            cp_id, clock, store, outbox, spawn, machine=LogUpload(), read=LogUpload.from_record,
            job_name=JOB, action=ACTION, uploads=uploads, log=log,
        )  # fmt: skip
        self._diagnostics = diagnostics
        self._security_log = security_log

    # -- what the handlers and the trigger ask ------------------------------------------------
    def request(
        self, log_type: str, request_id: int, location: str, oldest: float | None, latest: float | None,
        retries: int | None, retry_interval_s: float | None,
    ) -> tuple[str, str]:  # fmt: skip
        """GetLog: its status (Accepted, or AcceptedCanceled when it cancels a running upload) and the
        filename; the upload starts once the answer is sent. ValueError for a request refused."""
        busy = self._machine.busy
        name, step = self._machine.request(
            self._cp_id, location, retries, retry_interval_s, oldest, latest, self._now(),
            request_id=request_id, log_type=log_type,
        )  # fmt: skip
        self._carry_out(step)
        return ("AcceptedCanceled" if busy else "Accepted"), name

    def trigger(self) -> tuple[str, int | None]:
        """LogStatusNotification for a trigger: Idle without a requestId when nothing runs, else the
        running upload's status and requestId."""
        assert isinstance(self._machine, LogUpload)
        status, request_id = self._machine.trigger()
        return str(status), request_id

    # -- the file and the failures ------------------------------------------------------------
    def _work_dir(self) -> Path:
        return self._diagnostics.work_dir

    async def _make(self, request: DiagnosticsRequest, dest: Path) -> None:
        if request.log_type == "DiagnosticsLog":
            await self._diagnostics.build(dest, request.start_time, request.stop_time)
            return
        await asyncio.to_thread(write_window, self._security_log(), request, dest)

    def _failed(self, effect: Upload, exc: TransferError) -> UploadFailed:
        from bridge.transfer import Reason
        from bridge.transfer.urls import SCHEMES

        final: LogStatus | None = None
        if exc.reason is Reason.LOGIN_REFUSED:
            final = LogStatus.PERMISSION_DENIED
        elif exc.reason is Reason.UNSUPPORTED:
            scheme = _scheme(effect.request.location)  # None: not even a URL
            supported = scheme is None or scheme in SCHEMES  # a URL of ours that is malformed: BadMessage
            final = LogStatus.BAD_MESSAGE if supported else LogStatus.NOT_SUPPORTED_OPERATION
        return UploadFailed(effect.job, str(exc), final)


def _scheme(location: str) -> str | None:
    """The location's scheme, or None for one that does not even parse (`http://[::1/x`): a bad message
    too, never an exception in the upload's error path (it left the job Uploading for good)."""
    try:
        return urlsplit(location).scheme.lower()
    except ValueError:
        return None


def write_window(security_log: ChargePointLog | None, request: DiagnosticsRequest, dest: Path) -> None:
    """The charge point's lines of the security log in the request's window, as one file at `dest`
    (written whole, then renamed: the upload never sees half of one). In a thread: it reads files."""
    files = security_log.files() if security_log is not None else []
    window = lines_between(files, moment(request.start_time), moment(request.stop_time))
    partial = dest.with_name(dest.name + ".partial")
    with partial.open("wb") as out:
        if security_log is not None:
            out.writelines(line for line in window if security_log.owns(line))
    os.replace(partial, dest)
