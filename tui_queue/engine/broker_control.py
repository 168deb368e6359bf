"""What the engine may do to the broker it runs against, supplied by whoever started that broker."""

from __future__ import annotations

from typing import Protocol, runtime_checkable


@runtime_checkable
class BrokerControl(Protocol):
    """Restart (and describe) the broker. The engine never starts or owns a broker itself: the CLI
    hands it a BrokerProcess for the embedded broker, tests hand it one over a RabbitMQ node."""

    @property
    def url(self) -> str:
        """AMQP URL; the same before and after a restart."""
        ...

    @property
    def management_url(self) -> str | None: ...

    @property
    def is_embedded(self) -> bool: ...

    @property
    def durable_store(self) -> bool:
        """Whether durable queues and persistent messages survive a restart."""
        ...

    def restart(self, kill: bool) -> None:
        """Stop the broker (SIGKILL when kill, else a clean shutdown), start it again on the same
        ports and data, and return once it accepts connections."""
        ...
