"""Pure parts of the stats client and the connection helpers."""

from __future__ import annotations

import pika.exceptions
import pytest
from pika.adapters.utils.connection_workflow import AMQPConnectorSocketConnectError

from tui_queue.engine.config import QueueSpec
from tui_queue.engine.connect import (
    BrokerConnectError,
    describe_connect_error,
    parameters_for,
    safe_url,
    url_parts,
)
from tui_queue.engine.events import EventBus
from tui_queue.engine.ledger import Ledger
from tui_queue.engine.mailbox import Mailbox
from tui_queue.engine.stats import (
    ManagementClient,
    ManagementError,
    StatsPoller,
    StatsSource,
    _LedgerRates,
    default_management_url,
    parse_queue,
)

URL = "amqp://guest:secret@broker.example:5673/vh"


def test_parse_a_management_queue_document() -> None:
    document = {
        "messages_ready": 3,
        "messages_unacknowledged": 2,
        "consumers": 4,
        "type": "quorum",
        "durable": True,
        "message_stats": {
            "publish_details": {"rate": 1.5},
            "deliver_get_details": {"rate": 2.0},
            "ack_details": {"rate": 0.5},
        },
    }
    stats = parse_queue(document, "task_queue", at=1.0)
    assert (stats.ready, stats.unacked, stats.consumers) == (3, 2, 4)
    assert (stats.publish_rate, stats.deliver_rate, stats.ack_rate) == (1.5, 2.0, 0.5)
    assert (stats.queue_type, stats.durable, stats.source) == (
        "quorum",
        True,
        StatsSource.MANAGEMENT,
    )


def test_a_fresh_queue_has_no_message_stats_yet() -> None:
    stats = parse_queue({"messages_ready": 0}, "q", at=0.0)
    assert (stats.publish_rate, stats.unacked, stats.durable) == (0.0, 0, None)
    assert stats.available


def test_ledger_rates() -> None:
    rates = _LedgerRates()
    assert rates.sample(1.0, 0, 0, 0) == (0.0, 0.0, 0.0)
    assert rates.sample(3.0, 10, 4, 2) == (5.0, 2.0, 1.0)


def test_no_management_api_is_a_management_error() -> None:
    client = ManagementClient("http://127.0.0.1:1", "guest", "guest", timeout=0.5)
    with pytest.raises(ManagementError, match="no management API at http://127.0.0.1:1"):
        client.overview()
    assert default_management_url(URL) == "http://broker.example:15672"


def test_urls_without_passwords() -> None:
    assert safe_url(URL) == "amqp://guest@broker.example:5673/vh"
    assert safe_url("amqp://localhost/") == "amqp://localhost/"
    assert url_parts(URL) == ("broker.example", 5673, "vh", "guest", "secret")
    assert url_parts("amqp://guest:guest@localhost:5672/")[2] == "/"


def test_parameters() -> None:
    parameters = parameters_for(URL, heartbeat=2, name="tui-queue w1")
    assert parameters.heartbeat == 2
    assert parameters.client_properties == {"connection_name": "tui-queue w1"}
    with pytest.raises(BrokerConnectError, match="not an AMQP URL"):
        parameters_for("http://localhost")


def test_connect_errors_read_as_one_line() -> None:
    refused = pika.exceptions.AMQPConnectionError(
        AMQPConnectorSocketConnectError(ConnectionRefusedError(111, "Connection refused"))
    )
    assert describe_connect_error(refused, URL) == (
        "cannot reach the broker at amqp://guest@broker.example:5673/vh: connection refused"
    )
    login = pika.exceptions.ProbableAuthenticationError("403")
    assert "refused the login of user 'guest'" in describe_connect_error(login, URL)
    vhost = pika.exceptions.ProbableAccessDeniedError("530")
    assert "refused access to vhost 'vh'" in describe_connect_error(vhost, URL)
    for error in (refused, login, vhost, OSError("odd\nthing")):
        assert "\n" not in describe_connect_error(error, URL)


def test_mailbox_without_a_connection() -> None:
    box: Mailbox[int] = Mailbox()
    box.put(1)
    box.put(2)
    assert not box.empty()
    assert list(box.drain()) == [1, 2]
    assert box.wait_without_connection(0.01) is None
    box.put(3)
    assert box.wait_without_connection(1) == 3


def test_an_odd_management_answer_is_an_unavailable_sample_not_a_dead_poller() -> None:
    poller = StatsPoller(URL, "http://127.0.0.1:1", QueueSpec, Ledger(), EventBus())

    def odd_answer(_vhost: str, _name: str) -> dict[str, object]:
        return dict(5)  # type: ignore[call-overload]  # what dict() makes of a JSON number

    poller._management.queue = odd_answer  # type: ignore[method-assign]
    sample = poller.sample()
    assert sample.source is StatsSource.UNAVAILABLE and not sample.available
    assert sample.detail.startswith("stats failed: ") and "\n" not in sample.detail
