"""The embedded AMQP 0-9-1 broker. Stands alone: imports nothing else of tui_queue."""

from tui_queue.broker.config import BrokerConfig
from tui_queue.broker.runner import BrokerThread
from tui_queue.broker.server import Broker

__all__ = ["Broker", "BrokerConfig", "BrokerThread"]
