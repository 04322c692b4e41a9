"""`ocpp-bridge run | check | probe | status | diagnostics | demo | install-service`.

Exit codes: 0 fine; 1 the run failed (probe: a device failed); 2 the
configuration (or the command line) is wrong, with a message that names the
field and the fix.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from typing import Any

from bridge import __version__


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ocpp-bridge", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"ocpp-bridge {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run the bridge with a configuration file")
    run.add_argument("--config", "-c", required=True, help="YAML configuration file")
    run.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    run.add_argument("--log-frames", action="store_true", help="log every OCPP frame (logger ocpp.frames)")

    check = sub.add_parser("check", help="validate a configuration file and exit")
    check.add_argument("--config", "-c", required=True, help="YAML configuration file")

    probe = sub.add_parser("probe", help="read every configured device once and say what it sees")
    probe.add_argument("--config", "-c", required=True, help="YAML configuration file")
    probe.add_argument("--timeout", type=float, default=20.0, help="seconds per device (default 20)")

    sub.add_parser("templates", help="list the generic device's templates and their parameters")

    status = sub.add_parser("status", help="show what the running bridge is doing (from its local API)")
    status.add_argument(
        "--config",
        "-c",
        help="its configuration file, for the API address and token (default: 127.0.0.1:8080, no token)",
    )
    status.add_argument("--json", action="store_true", help="the local API's answer as it is")

    diag = sub.add_parser("diagnostics", help="write the archive GetDiagnostics uploads to a local file")
    diag.add_argument("--config", "-c", required=True, help="YAML configuration file")
    diag.add_argument("--output", "-o", required=True, help="the archive to write (.tar.gz)")
    diag.add_argument("--start", metavar="ISO", help="oldest log lines, e.g. 2025-01-31T02:00:00Z")
    diag.add_argument("--stop", metavar="ISO", help="newest log lines, with a time zone too")

    demo = sub.add_parser("demo", help="play a whole charging session with a simulated charger")
    demo.add_argument("--csms", metavar="URL", help="use this central system instead of the embedded one")

    svc = sub.add_parser(
        "install-service", help="install the systemd unit and a first configuration, start the service"
    )
    svc.add_argument("--dry-run", action="store_true", help="print every step, change nothing")
    svc.add_argument("--config-dir", default="/etc/ocpp-bridge", help="default /etc/ocpp-bridge")
    svc.add_argument("--unit-dir", default="/etc/systemd/system", help="default /etc/systemd/system")
    svc.add_argument(
        "--no-systemctl", action="store_true", help="write the files only, run no systemctl (for packaging)"
    )
    return parser


def _log_files(config: Any) -> Any:
    """The bridge's own log files in state_dir/logs (what a diagnostics archive holds); the daemon
    runs without them, saying so, when they cannot be made."""
    from bridge.diagnostics import install_log_files

    logs = config.logs
    try:
        return install_log_files(config.state_dir, logs.max_bytes, logs.backups, frames=logs.frames)
    except OSError as exc:
        logging.getLogger("bridge").warning(
            "no log files in %s/logs: %s; diagnostics archives will hold no log",
            config.state_dir, exc.strerror or exc,
        )  # fmt: skip
        return None


def _load(path: str) -> object:
    from bridge.config import ConfigError, load_config

    try:
        return load_config(path)
    except ConfigError as exc:
        print(f"error: {path} is not valid:\n{exc}", file=sys.stderr)
        raise SystemExit(2) from None
    except OSError as exc:
        print(f"error: cannot read {path}: {exc.strerror}", file=sys.stderr)
        raise SystemExit(2) from None


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "check":
        from bridge.config.rules_tls import tls_report
        from bridge.config.rules_top_level import api_warnings

        config = _load(args.config)
        problems, warnings = tls_report(config)  # type: ignore[arg-type]
        warnings += api_warnings(config)  # type: ignore[arg-type]
        for line in warnings:
            print(f"{args.config}: warning: {line}")
        if problems:  # a certificate out of its dates: `run` would start, but the link cannot work
            print(f"error: {args.config} is not valid:", file=sys.stderr)
            for line in problems:
                print(f"{args.config}: {line}", file=sys.stderr)
            return 2
        count = len(config.charge_points)  # type: ignore[attr-defined]
        print(f"{args.config}: valid ({count} charge point{'s' if count != 1 else ''})")
        return 0
    if args.command == "probe":
        from bridge.log import setup_logging
        from bridge.probe import probe

        setup_logging("ERROR")
        config = _load(args.config)
        return asyncio.run(probe(config, print, args.timeout))  # type: ignore[arg-type]
    if args.command == "templates":
        from adapters.generic.templates import TemplateError, listing

        try:
            print("\n".join(listing()))
        except TemplateError as exc:  # a broken template file: say which
            print(f"error: {exc}", file=sys.stderr)
            return 2
        return 0
    if args.command == "status":
        from bridge.config import ApiConfig
        from bridge.status_cli import show_status

        api = _load(args.config).api if args.config else ApiConfig()  # type: ignore[attr-defined]
        return show_status(api, print, as_json=args.json)
    if args.command == "diagnostics":
        from bridge.diagnostics_cli import run_diagnostics

        return run_diagnostics(args.config, args.output, args.start, args.stop, _load)
    if args.command == "demo":
        from bridge.demo import run_demo
        from bridge.log import setup_logging

        setup_logging("WARNING")
        return asyncio.run(run_demo(sys.stdout, args.csms))
    if args.command == "install-service":
        from pathlib import Path

        from bridge.service import install_service

        return install_service(
            dry_run=args.dry_run,
            config_dir=Path(args.config_dir),
            unit_dir=Path(args.unit_dir),
            systemctl=not args.no_systemctl,
        )
    if args.command == "run":
        from bridge.log import setup_logging

        setup_logging(args.log_level, frames=args.log_frames)
        from bridge.firmware.launch import launch

        # Before the configuration is validated: the active release of the bridge (an update installed
        # by UpdateFirmware) runs instead of this one, if there is one (bridge/firmware/launch.py).
        launch(args.config, list(argv) if argv is not None else sys.argv[1:])
        config = _load(args.config)
        from bridge.daemon import Daemon

        try:
            daemon = Daemon(config)  # type: ignore[arg-type]
        except OSError as exc:  # the store is opened here: state_dir must be a directory it can write
            state_dir = config.state_dir  # type: ignore[attr-defined]
            print(f"error: cannot use state_dir {state_dir}: {exc.strerror or exc}; it must be a directory "
                  "the service can create and write", file=sys.stderr)  # fmt: skip
            return 2
        log_files = _log_files(config)
        from bridge.config.rules_tls import tls_report

        for line in tls_report(config, dates=False)[1]:  # type: ignore[arg-type]
            logging.getLogger("bridge.security").warning("%s", line)
        try:
            asyncio.run(daemon.run())
        except KeyboardInterrupt:
            pass
        finally:
            logging.getLogger("bridge").info("stopped")
            if log_files is not None:
                log_files.remove()  # what is queued is written first
        return daemon.exit_code  # RESTART_EXIT_CODE: a firmware update asks the service to start again
    return 2


if __name__ == "__main__":
    sys.exit(main())
