"""Nightly churn-risk batch scorer.

Reads the customer feature extract (CSV, a few million rows), scores it with the
current gradient-boosted model and writes `customer_id,score,band` for the CRM
import. Runs on the analytics box from Airflow.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import pickle
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger("churn.scorer")

BANDS = ((0.75, "high"), (0.4, "medium"), (0.0, "low"))


@dataclass
class ScorerConfig:
    model_path: Path
    spec_path: Path
    batch_size: int = 5000
    workers: int = 4


class FeatureSpec:
    def __init__(self, path: Path) -> None:
        raw = json.loads(path.read_text())
        self.columns: list[str] = raw["features"]
        self.defaults: dict[str, float] = raw.get("defaults", {})
        self.clip: dict[str, tuple[float, float]] = {k: tuple(v) for k, v in raw.get("clip", {}).items()}

    def vector(self, row: dict[str, str]) -> list[float]:
        out = []
        for col in self.columns:
            value = row.get(col)
            x = float(value) if value not in (None, "", "NA") else self.defaults.get(col, 0.0)
            if col in self.clip:
                lo, hi = self.clip[col]
                x = min(max(x, lo), hi)
            out.append(x)
        return out


def band_for(score: float) -> str:
    for threshold, name in BANDS:
        if score >= threshold:
            return name
    return "low"


class BatchScorer:
    def __init__(self, config: ScorerConfig) -> None:
        self.config = config

    def _model(self):
        with open(self.config.model_path, "rb") as fh:
            return pickle.load(fh)

    def score_batch(self, rows: list[dict[str, str]]) -> list[tuple[str, float, str]]:
        spec = FeatureSpec(self.config.spec_path)
        model = self._model()
        matrix = np.asarray([spec.vector(r) for r in rows], dtype=np.float32)
        scores = model.predict_proba(matrix)[:, 1]
        return [(r["customer_id"], float(s), band_for(float(s))) for r, s in zip(rows, scores)]

    def _batches(self, rows: list[dict[str, str]]):
        while rows:
            batch = []
            while rows and len(batch) < self.config.batch_size:
                batch.append(rows.pop(0))
            yield batch

    def run(self, input_csv: Path, output_csv: Path) -> int:
        with open(input_csv, newline="") as fh:
            rows = list(csv.DictReader(fh))
        log.info("loaded %d rows from %s", len(rows), input_csv)

        tmp = output_csv.with_suffix(".partial")
        out = open(tmp, "w", newline="")
        writer = csv.writer(out)
        writer.writerow(["customer_id", "score", "band"])
        written = 0
        with ThreadPoolExecutor(max_workers=self.config.workers) as pool:
            for result in pool.map(self.score_batch, self._batches(rows)):
                writer.writerows((cid, f"{score:.5f}", band) for cid, score, band in result)
                written += len(result)
        out.close()
        tmp.replace(output_csv)
        log.info("wrote %d scores to %s", written, output_csv)
        return written


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("input", type=Path)
    parser.add_argument("output", type=Path)
    parser.add_argument("--model", type=Path, default=Path("/models/churn/current.pkl"))
    parser.add_argument("--spec", type=Path, default=Path("/models/churn/features.json"))
    parser.add_argument("--batch-size", type=int, default=5000)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    scorer = BatchScorer(ScorerConfig(args.model, args.spec, batch_size=args.batch_size))
    scorer.run(args.input, args.output)


if __name__ == "__main__":
    main()
