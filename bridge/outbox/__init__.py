"""The outbox: messages that must survive a restart (`queue`), the transaction messages among them
(`transactions`), and the central system's transaction ids (`tx_ids`)."""

from bridge.outbox.queue import Kind, Message, Outbox
from bridge.outbox.transactions import TransactionMessages
from bridge.outbox.tx_ids import TransactionIds

__all__ = ["Kind", "Message", "Outbox", "TransactionIds", "TransactionMessages"]
