"""AMQP reply codes as exceptions, with RabbitMQ's reply-text convention `NAME - explanation`."""

from __future__ import annotations

REPLY_NAMES: dict[int, str] = {
    311: "CONTENT_TOO_LARGE",
    312: "NO_ROUTE",
    313: "NO_CONSUMERS",
    320: "CONNECTION_FORCED",
    402: "INVALID_PATH",
    403: "ACCESS_REFUSED",
    404: "NOT_FOUND",
    405: "RESOURCE_LOCKED",
    406: "PRECONDITION_FAILED",
    501: "FRAME_ERROR",
    502: "SYNTAX_ERROR",
    503: "COMMAND_INVALID",
    504: "CHANNEL_ERROR",
    505: "UNEXPECTED_FRAME",
    506: "RESOURCE_ERROR",
    530: "NOT_ALLOWED",
    540: "NOT_IMPLEMENTED",
    541: "INTERNAL_ERROR",
}

# Soft errors close only the channel; every other code closes the connection.
CHANNEL_ERROR_CODES = frozenset({311, 312, 313, 403, 404, 405, 406})


class AMQPError(Exception):
    """An error the broker reports with channel.close or connection.close."""

    def __init__(self, code: int, explanation: str, class_id: int = 0, method_id: int = 0) -> None:
        self.code = code
        self.explanation = explanation
        self.class_id = class_id
        self.method_id = method_id
        # Set when the error names no method on purpose, so `at` leaves the ids at 0/0.
        self.no_method = False
        super().__init__(self.reply_text)

    @property
    def reply_text(self) -> str:
        # With nothing to explain (a crashed channel's 541) RabbitMQ sends the bare name.
        if not self.explanation:
            return REPLY_NAMES[self.code]
        return f"{REPLY_NAMES[self.code]} - {self.explanation}"

    @property
    def closes_connection(self) -> bool:
        return self.code not in CHANNEL_ERROR_CODES

    def at(self, class_id: int, method_id: int) -> AMQPError:
        """Attach the failing method's ids unless they are already known."""
        if not self.class_id and not self.method_id and not self.no_method:
            self.class_id, self.method_id = class_id, method_id
        return self


def access_refused(explanation: str) -> AMQPError:
    return AMQPError(403, explanation)


def not_found(explanation: str) -> AMQPError:
    return AMQPError(404, explanation)


def resource_locked(explanation: str) -> AMQPError:
    return AMQPError(405, explanation)


def precondition_failed(explanation: str) -> AMQPError:
    return AMQPError(406, explanation)


def frame_error(explanation: str, class_id: int = 0, method_id: int = 0) -> AMQPError:
    return AMQPError(501, explanation, class_id, method_id)


def command_invalid(explanation: str) -> AMQPError:
    return AMQPError(503, explanation)


def channel_error(explanation: str) -> AMQPError:
    return AMQPError(504, explanation)


def unexpected_frame(explanation: str) -> AMQPError:
    return AMQPError(505, explanation)


def not_allowed(explanation: str) -> AMQPError:
    return AMQPError(530, explanation)


def not_implemented(explanation: str) -> AMQPError:
    return AMQPError(540, explanation)


def internal_error(explanation: str) -> AMQPError:
    return AMQPError(541, explanation)


def channel_crash() -> AMQPError:
    """What a client sees when a RabbitMQ channel process crashes (on a property section it
    cannot decode, say): connection.close 541 with the bare text and no method, 0/0."""
    error = AMQPError(541, "")
    error.no_method = True
    return error


def erlang_binary(data: bytes) -> str:
    """How Erlang's ~p prints a binary, as it appears in RabbitMQ's frame error texts."""
    printable = all(32 <= b <= 126 or b in (9, 10, 13) for b in data)
    if data and printable:
        text = (
            data.decode("latin-1")
            .replace("\\", "\\\\")
            .replace('"', '\\"')
            .replace("\n", "\\n")
            .replace("\r", "\\r")
            .replace("\t", "\\t")
        )
        return f'<<"{text}">>'
    return "<<" + ",".join(str(b) for b in data) + ">>"
