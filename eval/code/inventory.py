"""Stock allocation: reserves stock for confirmed orders across the company's warehouses."""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Warehouse:
    code: str
    priority: int
    region: str


@dataclass
class Allocation:
    order_id: int
    sku: str
    warehouse: str
    quantity: int


def load_warehouses(conn: sqlite3.Connection) -> list[Warehouse]:
    rows = conn.execute("SELECT code, priority, region FROM warehouses WHERE open = 1").fetchall()
    return [Warehouse(*row) for row in rows]


def stock_levels(conn: sqlite3.Connection) -> dict[tuple[str, str], int]:
    rows = conn.execute("SELECT warehouse, sku, on_hand - reserved FROM stock").fetchall()
    return {(warehouse, sku): free for warehouse, sku, free in rows}


def allocate(conn: sqlite3.Connection, order_ids: list[int]) -> tuple[list[Allocation], list[int]]:
    """Reserve stock for the given orders, preferring high-priority warehouses in the order's region."""
    warehouses = load_warehouses(conn)
    free = stock_levels(conn)
    allocations: list[Allocation] = []
    backordered: list[int] = []
    placeholders = ",".join("?" * len(order_ids))
    lines = conn.execute(
        f"SELECT order_id, sku, quantity, region FROM order_lines JOIN orders ON orders.id = order_id "
        f"WHERE order_id IN ({placeholders}) ORDER BY order_id",
        order_ids,
    ).fetchall()
    for order_id, sku, quantity, region in lines:
        product = conn.execute("SELECT active, pack_size FROM products WHERE sku = ?", (sku,)).fetchone()
        if product is None or not product[0]:
            backordered.append(order_id)
            continue
        pack = product[1] or 1
        needed = -(-quantity // pack) * pack
        ranked = sorted(warehouses, key=lambda w: (w.region != region, -w.priority, w.code))
        for warehouse in ranked:
            available = free.get((warehouse.code, sku), 0)
            take = min(available, needed)
            if take <= 0:
                continue
            allocations.append(Allocation(order_id, sku, warehouse.code, take))
            free[(warehouse.code, sku)] = available - take
            needed -= take
            if needed == 0:
                break
        if needed > 0:
            backordered.append(order_id)
    return allocations, sorted(set(backordered))


def commit_allocations(conn: sqlite3.Connection, allocations: list[Allocation]) -> None:
    with conn:
        conn.executemany(
            "UPDATE stock SET reserved = reserved + ? WHERE warehouse = ? AND sku = ?",
            [(a.quantity, a.warehouse, a.sku) for a in allocations],
        )
        conn.executemany(
            "INSERT INTO reservations (order_id, sku, warehouse, quantity) VALUES (?, ?, ?, ?)",
            [(a.order_id, a.sku, a.warehouse, a.quantity) for a in allocations],
        )


def run(db_path: str, order_ids: list[int]) -> None:
    conn = sqlite3.connect(db_path)
    try:
        allocations, backordered = allocate(conn, order_ids)
        commit_allocations(conn, allocations)
    finally:
        conn.close()
    log.info("allocated %d lines; %d orders backordered", len(allocations), len(backordered))
