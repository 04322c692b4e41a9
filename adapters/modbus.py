"""One Modbus client per bus (placeholder: the bus client is being written)."""

from __future__ import annotations


class ModbusBus:
    @staticmethod
    def key_of(url: str) -> str:
        return url

    def __init__(self, url: str) -> None:
        self.url = url

    async def close(self) -> None:
        return None
