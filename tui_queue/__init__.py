"""tui-queue: a terminal lab for RabbitMQ work queues."""

__version__ = "0.1.0"
