"""Partner file ingest over SFTP.

Each partner drops CSV exports into an outbound directory on their own SFTP
server. This worker runs from cron every ten minutes, downloads the files it has
not seen before, parses them and stores the rows in the local staging database.
"""

from __future__ import annotations

import csv
import io
import logging
import posixpath
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import paramiko

log = logging.getLogger("ingest.sftp")

ACCEPTED_SUFFIXES = (".csv", ".txt")
REQUIRED_COLUMNS = {"order_ref", "sku", "quantity", "unit_price"}


@dataclass
class Partner:
    code: str
    host: str
    username: str
    key_path: Path
    inbox: str = "/outbound"
    port: int = 22


@dataclass
class IngestResult:
    partner: str
    files: list[str] = field(default_factory=list)
    rows: int = 0
    errors: list[str] = field(default_factory=list)


class PartnerIngest:
    """Pulls new partner files into the staging tables."""

    def __init__(self, db_path: Path, known_hosts: Path) -> None:
        self.db = sqlite3.connect(db_path)
        self.known_hosts = known_hosts
        self.processed = self._load_processed()

    def _load_processed(self) -> list[str]:
        cur = self.db.execute("SELECT partner || ':' || filename FROM ingested_files")
        return [row[0] for row in cur.fetchall()]

    def _open_client(self, partner: Partner) -> paramiko.SSHClient:
        client = paramiko.SSHClient()
        client.load_host_keys(str(self.known_hosts))
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        key = paramiko.Ed25519Key.from_private_key_file(str(partner.key_path))
        client.connect(
            partner.host,
            port=partner.port,
            username=partner.username,
            pkey=key,
            allow_agent=False,
            look_for_keys=False,
        )
        return client

    def _parse(self, partner: Partner, name: str, raw: bytes) -> list[tuple]:
        reader = csv.DictReader(io.StringIO(raw.decode("utf-8-sig")))
        missing = REQUIRED_COLUMNS - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{name}: missing columns {sorted(missing)}")
        rows = []
        for rec in reader:
            rows.append(
                (
                    partner.code,
                    name,
                    rec["order_ref"].strip(),
                    rec["sku"].strip().upper(),
                    int(rec["quantity"]),
                    float(rec["unit_price"]),
                )
            )
        return rows

    def _store(self, partner: Partner, name: str, rows: list[tuple]) -> None:
        with self.db:
            self.db.executemany(
                "INSERT INTO staging_lines (partner, filename, order_ref, sku, quantity, unit_price)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                rows,
            )
            self.db.execute(
                "INSERT INTO ingested_files (partner, filename, ingested_at) VALUES (?, ?, ?)",
                (partner.code, name, datetime.now(timezone.utc).isoformat()),
            )

    def ingest(self, partner: Partner) -> IngestResult:
        result = IngestResult(partner.code)
        client = self._open_client(partner)
        sftp = client.open_sftp()
        names = [n for n in sftp.listdir(partner.inbox) if n.lower().endswith(ACCEPTED_SUFFIXES)]
        if not names:
            log.info("%s: inbox empty", partner.code)
            return result

        for name in sorted(names):
            key = f"{partner.code}:{name}"
            if key in self.processed:
                continue
            remote = posixpath.join(partner.inbox, name)
            with sftp.open(remote, "rb") as fh:
                fh.prefetch()
                raw = fh.read()
            try:
                rows = self._parse(partner, name, raw)
            except ValueError as exc:
                result.errors.append(str(exc))
                continue
            self._store(partner, name, rows)
            self.processed.append(key)
            result.files.append(name)
            result.rows += len(rows)

        sftp.close()
        client.close()
        return result

    def run(self, partners: list[Partner]) -> list[IngestResult]:
        results = []
        for partner in partners:
            try:
                results.append(self.ingest(partner))
            except (paramiko.SSHException, OSError) as exc:
                log.error("%s: ingest failed: %s", partner.code, exc)
                results.append(IngestResult(partner.code, errors=[str(exc)]))
        return results
