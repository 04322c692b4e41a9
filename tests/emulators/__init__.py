"""Device emulators that follow the published APIs (../shared/reference/devices.md), quirks included."""
