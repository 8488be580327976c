"""Consume order events from Kafka and apply them to the fulfilment database.

Offsets are committed by hand once a whole batch has been applied, so an event is applied at
least once; `apply_event` is idempotent on the event id (it records applied ids in the same
transaction). A message that is not valid JSON goes to the dead-letter topic and is skipped.
"""

from __future__ import annotations

import json
import logging
import signal
import threading
import time
from typing import Any

import psycopg2
from confluent_kafka import Consumer, KafkaException, Message, Producer
from psycopg2.extensions import TransactionRollbackError

log = logging.getLogger("orders.consumer")

BATCH_SIZE = 1000
POLL_TIMEOUT_S = 1.0
STALL_WARNING_S = 300


def apply_event(conn: Any, event: dict[str, Any]) -> None:
    """Apply one order event in its own transaction; a second delivery of an id is a no-op."""
    with conn.cursor() as cur:
        cur.execute("INSERT INTO applied_events (id) VALUES (%s) ON CONFLICT DO NOTHING", (event["id"],))
        if cur.rowcount == 0:
            conn.rollback()
            return
        if event["type"] == "order.placed":
            cur.execute(
                "INSERT INTO shipments (order_id, warehouse, status) VALUES (%s, %s, 'pending')",
                (event["order_id"], event.get("warehouse", "main")),
            )
        elif event["type"] == "order.cancelled":
            cur.execute(
                "UPDATE shipments SET status = 'cancelled' WHERE order_id = %s AND status = 'pending'",
                (event["order_id"],),
            )
    conn.commit()


class OrderConsumer:
    """Polls `topic` in batches and applies each event to the database."""

    def __init__(self, kafka_conf: dict[str, Any], dsn: str, topic: str, dead_letter_topic: str) -> None:
        self.consumer = Consumer({**kafka_conf, "enable.auto.commit": False, "auto.offset.reset": "earliest"})
        self.producer = Producer({"bootstrap.servers": kafka_conf["bootstrap.servers"]})
        self.db = psycopg2.connect(dsn, connect_timeout=5)
        self.topic = topic
        self.dead_letter_topic = dead_letter_topic
        self._pending: list[Message] = []
        self._running = True
        self._last_applied = time.monotonic()

    def stop(self, *_args: Any) -> None:
        self._running = False

    def _watch_progress(self) -> None:
        while True:
            time.sleep(30)
            idle = time.monotonic() - self._last_applied
            if idle > STALL_WARNING_S:
                log.warning("no order event applied for %.0f s", idle)

    def _apply_with_retry(self, event: dict[str, Any]) -> None:
        while True:
            try:
                apply_event(self.db, event)
                return
            except (TransactionRollbackError, psycopg2.OperationalError) as exc:
                log.info("retrying event %s after %s", event.get("id"), exc.__class__.__name__)
                self.db.rollback()

    def _handle(self, msg: Message) -> None:
        try:
            event = json.loads(msg.value())
        except (TypeError, ValueError):
            self.producer.produce(self.dead_letter_topic, msg.value(), key=msg.key())
            return
        self._apply_with_retry(event)
        self._last_applied = time.monotonic()

    def _drain(self) -> int:
        done = 0
        while self._pending:
            msg = self._pending.pop(0)
            self._handle(msg)
            done += 1
        return done

    def run(self) -> None:
        threading.Thread(target=self._watch_progress, name="progress-watch").start()
        self.consumer.subscribe([self.topic])
        try:
            while self._running:
                batch = self.consumer.consume(num_messages=BATCH_SIZE, timeout=POLL_TIMEOUT_S)
                for msg in batch:
                    if msg.error():
                        raise KafkaException(msg.error())
                    self._pending.append(msg)
                if self._drain():
                    self.producer.flush(10)
                    self.consumer.commit(asynchronous=False)
        finally:
            self.consumer.close()
            self.db.close()


def main() -> None:
    logging.basicConfig(level=logging.INFO)
    consumer = OrderConsumer(
        {"bootstrap.servers": "kafka:9092", "group.id": "fulfilment"},
        "dbname=fulfilment host=db user=fulfilment",
        "orders",
        "orders.dead-letter",
    )
    signal.signal(signal.SIGTERM, consumer.stop)
    signal.signal(signal.SIGINT, consumer.stop)
    consumer.run()


if __name__ == "__main__":
    main()
