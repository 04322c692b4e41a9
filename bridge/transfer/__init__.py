"""File transfer for FirmwareManagement: firmware downloads and diagnostics uploads over HTTP(S) and
FTP(S), streamed, off the event loop's back, failing with a TransferError whose `reason` says why."""

from __future__ import annotations

from bridge.transfer.download import DownloadResult, download
from bridge.transfer.errors import Reason, TransferError
from bridge.transfer.upload import upload
from bridge.transfer.urls import masked


def supported_protocols() -> list[str]:
    """The value of the SupportedFileTransferProtocols key: what download and upload handle."""
    return ["FTP", "FTPS", "HTTP", "HTTPS"]


__all__ = ["DownloadResult", "Reason", "TransferError", "download", "masked", "supported_protocols", "upload"]
