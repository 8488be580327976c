"""Notification job consumer.

Reserves jobs from the broker (a small line-based TCP protocol), renders the
message for every recipient of the job, hands it to the mail relay and records
the delivery in the shared outbox database.
"""
from __future__ import annotations

import json
import logging
import queue
import socket
import sqlite3
import threading
from contextlib import closing
from dataclasses import dataclass

log = logging.getLogger("notify_consumer")

BROKER = ("broker.internal", 11300)
RESERVE_SECONDS = 2


@dataclass
class Job:
    id: str
    template: str
    recipient_ids: list[int]
    params: dict


class Broker:
    def __init__(self, addr=BROKER, timeout: float = RESERVE_SECONDS + 10):
        self._sock = socket.create_connection(addr, timeout=timeout)
        self._rfile = self._sock.makefile("rb")

    def _call(self, line: str) -> bytes:
        self._sock.sendall(line.encode() + b"\r\n")
        return self._rfile.readline().rstrip(b"\r\n")

    def reserve(self) -> Job | None:
        head = self._call(f"reserve-with-timeout {RESERVE_SECONDS}")
        if head.startswith(b"TIMED_OUT"):
            return None
        _, job_id, size = head.split()
        payload = json.loads(self._rfile.read(int(size) + 2)[:-2])
        return Job(job_id.decode(), payload["template"], payload["recipients"], payload["params"])

    def delete(self, job_id: str) -> None:
        self._call(f"delete {job_id}")

    def release(self, job_id: str, delay: int = 30) -> None:
        self._call(f"release {job_id} 1024 {delay}")

    def close(self) -> None:
        self._rfile.close()
        self._sock.close()


class Consumer:
    def __init__(self, db_path: str, relay, workers: int = 4):
        self._db = sqlite3.connect(db_path, timeout=5, check_same_thread=False)
        self._db_lock = threading.Lock()
        self._relay = relay
        self._jobs: queue.Queue[Job] = queue.Queue(maxsize=workers * 2)
        self._results: queue.Queue[tuple[str, bool]] = queue.Queue()
        self._done: list[str] = []
        self._workers = workers
        self._stop = threading.Event()

    def _recipients(self, ids: list[int]) -> list[dict]:
        people = []
        with self._db_lock:
            for rid in ids:
                row = self._db.execute(
                    "SELECT id, email, locale, display_name FROM recipient WHERE id = ?",
                    (rid,),
                ).fetchone()
                if row is not None:
                    people.append(dict(zip(("id", "email", "locale", "name"), row)))
        return people

    def _record(self, job: Job, sent: int) -> None:
        self._db_lock.acquire()
        self._db.execute(
            "INSERT INTO outbox (job_id, template, sent) VALUES (?, ?, ?)",
            (job.id, job.template, sent),
        )
        self._db.commit()
        self._db_lock.release()

    def handle(self, job: Job) -> None:
        if job.id in self._done:
            return
        sent = 0
        for person in self._recipients(job.recipient_ids):
            msg = self._relay.render(job.template, person["locale"], {**job.params, **person})
            self._relay.send(person["email"], msg)
            sent += 1
        self._record(job, sent)
        self._done.append(job.id)

    def _work(self) -> None:
        while not self._stop.is_set():
            try:
                job = self._jobs.get(timeout=1)
            except queue.Empty:
                continue
            try:
                self.handle(job)
            except Exception:
                log.exception("job %s failed", job.id)
                self._results.put((job.id, False))
            else:
                self._results.put((job.id, True))
            finally:
                self._jobs.task_done()

    def _settle(self, broker: Broker) -> None:
        while True:
            try:
                job_id, ok = self._results.get_nowait()
            except queue.Empty:
                return
            if ok:
                broker.delete(job_id)
            else:
                broker.release(job_id)

    def run(self) -> None:
        threads = [threading.Thread(target=self._work, daemon=True) for _ in range(self._workers)]
        for t in threads:
            t.start()
        with closing(Broker()) as broker:
            try:
                while not self._stop.is_set():
                    self._settle(broker)
                    job = broker.reserve()
                    if job is not None:
                        self._jobs.put(job)
            finally:
                self._stop.set()
                for t in threads:
                    t.join()
                self._settle(broker)
