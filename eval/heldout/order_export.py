"""Hourly order export for the data warehouse.

Collects the orders placed in the last hour, together with their line items and the
warehouse's product catalogue snapshot, writes them as gzipped JSON Lines and drops the
file into the partner's S3 bucket. The exporter runs as a background task inside the
order API process (`start_export_task` is called from the app's startup hook).
"""

from __future__ import annotations

import asyncio
import gzip
import io
import json
import logging
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import asyncpg
import boto3
from botocore.config import Config

log = logging.getLogger("order_export")

EXPORT_STATES = ("paid", "shipped", "delivered")


@dataclass
class LineItem:
    sku: str
    quantity: int
    unit_price: str


@dataclass
class ExportedOrder:
    order_id: int
    customer_id: int
    placed_at: str
    currency: str
    total: str
    items: list[LineItem]


def _money(value: Decimal) -> str:
    return f"{value:.2f}"


class OrderExporter:
    def __init__(self, dsn: str, bucket: str, prefix: str = "orders/") -> None:
        self.dsn = dsn
        self.bucket = bucket
        self.prefix = prefix
        self.s3 = boto3.client("s3", config=Config(connect_timeout=5, read_timeout=30))

    async def _orders(self, conn: asyncpg.Connection, since: datetime, until: datetime) -> list[asyncpg.Record]:
        return await conn.fetch(
            "SELECT id, customer_id, placed_at, currency, total FROM orders "
            "WHERE placed_at >= $1 AND placed_at < $2 AND state = ANY($3::text[]) ORDER BY id",
            since, until, list(EXPORT_STATES),
        )

    async def _catalogue_version(self, conn: asyncpg.Connection) -> str:
        return await conn.fetchval("SELECT max(version) FROM catalogue_snapshots")

    async def _items(self, conn: asyncpg.Connection, order_id: int) -> list[LineItem]:
        rows = await conn.fetch(
            "SELECT sku, quantity, unit_price FROM order_items WHERE order_id = $1 ORDER BY sku",
            order_id,
        )
        return [LineItem(r["sku"], r["quantity"], _money(r["unit_price"])) for r in rows]

    async def collect(self, pool: asyncpg.Pool, since: datetime, until: datetime) -> tuple[str, list[ExportedOrder]]:
        async with pool.acquire() as conn:
            orders = await self._orders(conn, since, until)
        async with pool.acquire() as conn:
            version = await self._catalogue_version(conn)
        exported: list[ExportedOrder] = []
        async with pool.acquire() as conn:
            for o in orders:
                exported.append(
                    ExportedOrder(
                        order_id=o["id"],
                        customer_id=o["customer_id"],
                        placed_at=o["placed_at"].isoformat(),
                        currency=o["currency"],
                        total=_money(o["total"]),
                        items=await self._items(conn, o["id"]),
                    )
                )
        return version, exported

    @staticmethod
    def encode(version: str, orders: list[ExportedOrder]) -> bytes:
        buf = io.BytesIO()
        with gzip.GzipFile(fileobj=buf, mode="wb") as gz:
            gz.write((json.dumps({"catalogue_version": version}) + "\n").encode())
            for order in orders:
                gz.write((json.dumps(asdict(order), separators=(",", ":")) + "\n").encode())
        return buf.getvalue()

    async def upload(self, key: str, body: bytes) -> None:
        self.s3.put_object(
            Bucket=self.bucket, Key=key, Body=body,
            ContentType="application/x-ndjson", ContentEncoding="gzip",
        )

    async def export_last_hour(self, pool: asyncpg.Pool) -> str:
        until = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
        since = until - timedelta(hours=1)
        version, orders = await self.collect(pool, since, until)
        key = f"{self.prefix}{since:%Y/%m/%d/%H}.jsonl.gz"
        await self.upload(key, self.encode(version, orders))
        log.info("exported %d orders to s3://%s/%s", len(orders), self.bucket, key)
        return key


async def _export_loop(exporter: OrderExporter, pool: asyncpg.Pool) -> None:
    while True:
        try:
            await exporter.export_last_hour(pool)
        except (asyncpg.PostgresError, OSError):
            log.exception("hourly export failed")
        await asyncio.sleep(3600)


def start_export_task(pool: asyncpg.Pool, dsn: str, bucket: str) -> asyncio.Task[None]:
    """Schedule the hourly export on the running event loop of the order API."""
    exporter = OrderExporter(dsn, bucket)
    return asyncio.get_running_loop().create_task(_export_loop(exporter, pool), name="order-export")
