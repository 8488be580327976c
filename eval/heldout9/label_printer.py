"""Batch printing of shipping labels on the dispatch bay's Zebra printers.

Each label gets the next tracking reference from the depot's counter file
(so numbering survives restarts), is rendered as ZPL, sent to the printer's
raw port, and archived with the batch manifest for the carrier audit.
"""

from __future__ import annotations

import json
import logging
import socket
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

log = logging.getLogger("dispatch.labels")

PRINTER_PORT = 9100
_ZPL_SPECIAL = str.maketrans({"^": " ", "~": " ", "\\": "/"})


@dataclass
class Shipment:
    order_id: str
    name: str
    street: str
    city: str
    postcode: str
    country: str
    weight_g: int
    service: str = "STD"


def _zpl_safe(text: str, width: int) -> str:
    return text.translate(_ZPL_SPECIAL)[:width]


def render_zpl(shipment: Shipment, ref: str) -> str:
    lines = [
        "^XA^CI28",
        f"^FO40,40^A0N,40,40^FD{_zpl_safe(shipment.name, 32)}^FS",
        f"^FO40,95^A0N,32,32^FD{_zpl_safe(shipment.street, 40)}^FS",
        f"^FO40,140^A0N,32,32^FD{_zpl_safe(shipment.postcode, 10)} "
        f"{_zpl_safe(shipment.city, 28)}^FS",
        f"^FO40,185^A0N,32,32^FD{_zpl_safe(shipment.country, 2).upper()}^FS",
        f"^FO40,250^BY3^BCN,120,Y,N,N^FD{ref}^FS",
        f"^FO40,420^A0N,28,28^FD{shipment.service} {shipment.weight_g / 1000:.2f} kg^FS",
        "^XZ",
    ]
    return "\n".join(lines)


class LabelBatchPrinter:
    def __init__(self, printer_host: str, counter_path: Path, archive_dir: Path,
                 prefix: str = "DP", workers: int = 4) -> None:
        self.printer_host = printer_host
        self.counter_path = counter_path
        self.archive_dir = archive_dir
        self.prefix = prefix
        self.workers = workers

    def _reserve_ref(self) -> str:
        text = self.counter_path.read_text().strip() if self.counter_path.exists() else ""
        value = int(text or 0) + 1
        self.counter_path.write_text(f"{value}\n")
        return f"{self.prefix}{value:09d}"

    def _send(self, zpl: bytes) -> None:
        with socket.create_connection((self.printer_host, PRINTER_PORT)) as conn:
            conn.sendall(zpl)

    def _print_one(self, shipment: Shipment) -> tuple[str, bytes]:
        ref = self._reserve_ref()
        zpl = render_zpl(shipment, ref).encode("utf-8")
        self._send(zpl)
        log.info("printed %s for order %s", ref, shipment.order_id)
        return ref, zpl

    def print_batch(self, batch_id: str, shipments: list[Shipment]) -> list[str]:
        """Print every label of a batch; the tracking refs, in shipment order."""
        self.archive_dir.mkdir(parents=True, exist_ok=True)
        archive = zipfile.ZipFile(self.archive_dir / f"{batch_id}.zip", "w",
                                  compression=zipfile.ZIP_DEFLATED)
        refs: list[str] = []
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            results = pool.map(self._print_one, shipments)
            for shipment, (ref, zpl) in zip(shipments, results):
                archive.writestr(f"{shipment.order_id}-{ref}.zpl", zpl)
                refs.append(ref)
        manifest = {
            "batch": batch_id,
            "printed_at": datetime.now(timezone.utc).isoformat(),
            "printer": self.printer_host,
            "labels": [dict(asdict(s), ref=r) for s, r in zip(shipments, refs)],
        }
        archive.writestr("manifest.json", json.dumps(manifest, indent=2))
        archive.close()
        return refs


def load_shipments(path: Path) -> list[Shipment]:
    with path.open(encoding="utf-8") as fh:
        return [Shipment(**row) for row in json.load(fh)]


if __name__ == "__main__":
    import sys

    logging.basicConfig(level=logging.INFO)
    printer = LabelBatchPrinter(sys.argv[1], Path("/var/lib/dispatch/tracking.counter"),
                                Path("/var/lib/dispatch/labels"))
    for ref in printer.print_batch(sys.argv[2], load_shipments(Path(sys.argv[3]))):
        print(ref)
