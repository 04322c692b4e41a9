"""What UpdateFirmware installs: the installers behind `install.Installer` (none, a command, the
device, the bridge itself) and the launcher that starts the bridge's active release.

The pure machine (bridge/core/firmware.py) decides when to install; the runtime calls an installer
and hands its outcome back to the machine. Nothing here imports the runtime or the configuration.
"""
