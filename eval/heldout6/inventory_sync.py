"""Keeps warehouse stock levels in Postgres in step with the suppliers' availability APIs."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from dataclasses import dataclass
from datetime import datetime, timezone

import asyncpg
import httpx

log = logging.getLogger("inventory")

REFRESH_EVERY = 120


@dataclass
class Supplier:
    code: str
    base_url: str
    api_key: str


class SupplierGateway:
    def __init__(self, suppliers: list[Supplier]) -> None:
        self._suppliers = {s.code: s for s in suppliers}
        self._client = httpx.AsyncClient(timeout=httpx.Timeout(15.0, connect=5.0))
        self._tokens: dict[str, tuple[str, float]] = {}
        self._token_lock = asyncio.Lock()

    async def _token(self, supplier: Supplier) -> str:
        async with self._token_lock:
            cached = self._tokens.get(supplier.code)
            if cached is None or cached[1] <= time.monotonic():
                resp = await self._client.post(
                    f"{supplier.base_url}/oauth/token",
                    data={"grant_type": "client_credentials", "client_secret": supplier.api_key},
                )
                resp.raise_for_status()
                body = resp.json()
                cached = (body["access_token"], time.monotonic() + body.get("expires_in", 3600) - 60)
                self._tokens[supplier.code] = cached
            return cached[0]

    async def availability(self, supplier_code: str, skus: list[str]) -> dict[str, int]:
        supplier = self._suppliers[supplier_code]
        token = await self._token(supplier)
        pages = [skus[i : i + 200] for i in range(0, len(skus), 200)]
        responses = await asyncio.gather(
            *(
                self._client.post(
                    f"{supplier.base_url}/v1/availability",
                    json={"skus": page},
                    headers={"authorization": f"Bearer {token}"},
                )
                for page in pages
            )
        )
        levels: dict[str, int] = {}
        for resp in responses:
            resp.raise_for_status()
            levels.update({row["sku"]: int(row["available"]) for row in resp.json()["items"]})
        return levels

    async def aclose(self) -> None:
        await self._client.aclose()


class InventorySync:
    def __init__(self, dsn: str, gateway: SupplierGateway) -> None:
        self._dsn = dsn
        self._gateway = gateway
        self._pool: asyncpg.Pool | None = None
        self._loop_task: asyncio.Task | None = None

    async def start(self) -> None:
        self._pool = await asyncpg.create_pool(self._dsn, min_size=2, max_size=10, command_timeout=20)
        self._loop_task = asyncio.create_task(self._refresh_forever())

    async def _skus_by_supplier(self) -> dict[str, list[str]]:
        async with self._pool.acquire() as conn:
            rows = await conn.fetch("SELECT supplier_code, sku FROM catalog WHERE active")
        grouped: dict[str, list[str]] = {}
        for row in rows:
            grouped.setdefault(row["supplier_code"], []).append(row["sku"])
        return grouped

    async def _apply(self, supplier_code: str, levels: dict[str, int]) -> int:
        conn = await self._pool.acquire()
        tx = conn.transaction()
        await tx.start()
        try:
            await conn.executemany(
                "UPDATE stock SET available = $2, synced_at = $3 WHERE sku = $1",
                [(sku, qty, datetime.now(timezone.utc)) for sku, qty in levels.items()],
            )
            await conn.execute(
                "INSERT INTO sync_log (supplier_code, skus, at) VALUES ($1, $2, now())",
                supplier_code,
                len(levels),
            )
        except Exception:
            await tx.rollback()
            raise
        await tx.commit()
        await self._pool.release(conn)
        return len(levels)

    async def _sync_supplier(self, supplier_code: str, skus: list[str]) -> int:
        try:
            levels = await self._gateway.availability(supplier_code, skus)
        except httpx.HTTPError as exc:
            log.warning("supplier %s unavailable: %s", supplier_code, exc)
            return 0
        return await self._apply(supplier_code, levels)

    async def refresh_once(self) -> int:
        grouped = await self._skus_by_supplier()
        results = await asyncio.gather(
            *(self._sync_supplier(code, skus) for code, skus in grouped.items()),
            return_exceptions=True,
        )
        total = 0
        for code, result in zip(grouped, results):
            if isinstance(result, BaseException):
                log.error("sync for %s failed: %r", code, result)
            else:
                total += result
        return total

    async def _refresh_forever(self) -> None:
        while True:
            try:
                n = await self.refresh_once()
                log.info("refreshed %d skus", n)
            except (asyncpg.PostgresError, OSError):
                log.exception("refresh failed")
            await asyncio.sleep(REFRESH_EVERY)

    async def stop(self) -> None:
        if self._pool is not None:
            await self._pool.close()
        await self._gateway.aclose()


async def main() -> None:
    logging.basicConfig(level=logging.INFO)
    suppliers = [
        Supplier(code, os.environ[f"SUPPLIER_{code}_URL"], os.environ[f"SUPPLIER_{code}_KEY"])
        for code in os.environ.get("SUPPLIERS", "ACME,NORTHWIND").split(",")
    ]
    sync = InventorySync(os.environ["INVENTORY_DSN"], SupplierGateway(suppliers))
    await sync.start()
    try:
        await asyncio.Event().wait()
    finally:
        await sync.stop()


if __name__ == "__main__":
    asyncio.run(main())
