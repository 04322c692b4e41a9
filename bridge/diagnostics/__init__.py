"""Diagnostics: the bridge's own bounded log files, and the archive GetDiagnostics uploads.

`logfiles.py` keeps `<state_dir>/logs/bridge.log` and `frames.log` (the journal is out of reach of the
service's dynamic user); `window.py` selects their lines in a window of time; `redact.py` masks the
secrets of the configuration and of the JSON parts; `versions.py` says what runs; `archive.py` builds
the tar.gz with bounded memory.
"""

from bridge.diagnostics.archive import ArchiveParts, build_archive
from bridge.diagnostics.logfiles import (
    BRIDGE_LOG,
    DEFAULT_BACKUPS,
    DEFAULT_MAX_BYTES,
    FRAMES_LOG,
    LOGS_DIR,
    LogFiles,
    install_log_files,
    rotated_files,
)
from bridge.diagnostics.redact import is_secret_name, redact_value, redacted_config
from bridge.diagnostics.versions import versions
from bridge.diagnostics.window import lines_between

__all__ = [
    "BRIDGE_LOG",
    "DEFAULT_BACKUPS",
    "DEFAULT_MAX_BYTES",
    "FRAMES_LOG",
    "LOGS_DIR",
    "ArchiveParts",
    "LogFiles",
    "build_archive",
    "install_log_files",
    "is_secret_name",
    "lines_between",
    "redact_value",
    "redacted_config",
    "rotated_files",
    "versions",
]
