"""The ways a transfer fails, as one exception type carrying a reason an installer understands.

Messages name the location with its password masked (`urls.masked`): they go to logs, status
notifications and the status API.
"""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    NOT_FOUND = "not found"  # HTTP 404, FTP 550
    REFUSED = "connection refused"  # nobody listens, or the host cannot be reached or resolved
    LOGIN_REFUSED = "login refused"  # wrong FTP user or password, HTTP 401/403
    CUT_OFF = "cut off"  # fewer bytes than announced, connection reset mid-transfer
    TOO_LARGE = "too large"  # more than max_bytes
    DISK_FULL = "disk full"  # ENOSPC / EFBIG while writing
    TIMEOUT = "timeout"  # no connection or no data within timeout_s
    TLS = "TLS failure"  # handshake or certificate verification failed
    UNSUPPORTED = "unsupported location"  # a scheme other than http(s)/ftp(s), or a malformed URL
    SERVER_ERROR = "server error"  # any other refusal by the server (HTTP 5xx, FTP 4xx/5xx)
    LOCAL_FILE = "local file error"  # the file to upload cannot be read


class TransferError(Exception):
    """A download or upload that failed; `reason` says why, the message gives the detail."""

    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(f"{reason.value}: {message}")
        self.reason = reason
        self.detail = message
