"""The security extension's GetLog (white paper N01): answered at once with the filename; the file is
made and uploaded after the answer, each step reported by a LogStatusNotification with the requestId."""

from __future__ import annotations

from typing import Any

from ocpp.routing import on
from ocpp.v16 import call_result
from ocpp.v16.enums import Action

from bridge.ocpp.errors import ErrorCode, OcppError
from bridge.ocpp.handlers.firmware import epoch
from bridge.ocpp.ports import LogControl


class LogHandlers:
    def __init__(self, logs: LogControl) -> None:
        self._logs = logs

    @on(Action.get_log)
    def get_log(
        self, log: dict[str, Any], log_type: str, request_id: int, retries: int | None = None,
        retry_interval: int | None = None, **_: Any,
    ) -> call_result.GetLog:  # fmt: skip
        """Accepted, or AcceptedCanceled when it cancels the upload running (N01: a new request
        replaces it); a request that cannot be carried out is a PropertyConstraintViolation."""
        try:
            status, name = self._logs.request(
                log_type, request_id, log["remote_location"],
                epoch(log.get("oldest_timestamp"), "oldestTimestamp"),
                epoch(log.get("latest_timestamp"), "latestTimestamp"), retries, retry_interval,
            )  # fmt: skip
        except ValueError as exc:
            raise OcppError(ErrorCode.PROPERTY_CONSTRAINT_VIOLATION, str(exc)) from None
        return call_result.GetLog(status=status, filename=name)
