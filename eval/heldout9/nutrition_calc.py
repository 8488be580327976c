"""Per-serving nutrition facts for recipes.

Ingredient lines are parsed into quantity, unit and food; each food is
linked to a FoodData record (once, then stored on the ingredient) and the
nutrients are scaled by the ingredient's weight in grams.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import requests

log = logging.getLogger("recipes.nutrition")

FOOD_API = "https://fooddata.internal/api/v2"
UNITS_FILE = Path(__file__).with_name("units.json")
NUTRIENTS = ("energy_kcal", "protein_g", "fat_g", "carbs_g", "fibre_g", "sodium_mg")

_LINE = re.compile(
    r"^\s*(?P<qty>\d+(?:\s+\d+/\d+|/\d+|\.\d+)?)\s*(?P<unit>[a-zA-Z]+\.?)?\s+(?P<food>.+?)\s*$"
)


@dataclass
class Ingredient:
    line: str
    quantity: float
    unit: str
    food: str
    food_id: str | None = None


def parse_quantity(text: str) -> float:
    """'1 1/2' -> 1.5, '3/4' -> 0.75, '2.5' -> 2.5"""
    return float(sum(Fraction(part) for part in text.split()))


def parse_line(line: str) -> Ingredient | None:
    m = _LINE.match(line)
    if m is None:
        return None
    unit = (m["unit"] or "each").rstrip(".").lower()
    return Ingredient(line, parse_quantity(m["qty"]), unit, m["food"])


def _unit_grams() -> dict[str, float]:
    with UNITS_FILE.open(encoding="utf-8") as fh:
        table = json.load(fh)
    return {alias.lower(): unit["grams"] for unit in table["units"] for alias in unit["aliases"]}


def grams(ingredient: Ingredient, food: dict) -> float:
    if ingredient.unit == "each":
        return ingredient.quantity * float(food.get("portion_g") or 100.0)
    factor = _unit_grams().get(ingredient.unit)
    if factor is None:
        raise ValueError(f"unknown unit {ingredient.unit!r} in {ingredient.line!r}")
    return ingredient.quantity * factor * float(food.get("density") or 1.0)


class FoodData:
    def __init__(self, api_key: str) -> None:
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {api_key}"

    def search(self, name: str) -> str | None:
        resp = self.session.get(f"{FOOD_API}/search", params={"q": name, "limit": 1})
        resp.raise_for_status()
        hits = resp.json()["results"]
        return hits[0]["id"] if hits else None

    def food(self, food_id: str) -> dict:
        resp = self.session.get(f"{FOOD_API}/foods/{food_id}", timeout=10)
        resp.raise_for_status()
        return resp.json()

    def foods(self, food_ids: list[str]) -> dict[str, dict]:
        resp = self.session.get(f"{FOOD_API}/foods", params={"ids": ",".join(food_ids)}, timeout=10)
        resp.raise_for_status()
        return {item["id"]: item for item in resp.json()["items"]}


def link_ingredients(api: FoodData, ingredients: list[Ingredient]) -> list[Ingredient]:
    """Fill in food_id for ingredients not linked yet; returns those still unlinked."""
    unlinked = []
    for ing in ingredients:
        if ing.food_id is None:
            ing.food_id = api.search(ing.food)
        if ing.food_id is None:
            unlinked.append(ing)
    return unlinked


def per_serving(api: FoodData, ingredients: list[Ingredient], servings: int) -> dict[str, float]:
    totals = dict.fromkeys(NUTRIENTS, 0.0)
    for ing in ingredients:
        if ing.food_id is None:
            continue
        food = api.food(ing.food_id)
        weight = grams(ing, food)
        for name in NUTRIENTS:
            totals[name] += float(food["per_100g"].get(name, 0.0)) * weight / 100.0
    return {name: round(value / max(servings, 1), 1) for name, value in totals.items()}


def compare(api: FoodData, food_ids: list[str], nutrient: str) -> list[tuple[str, float]]:
    """Foods ranked by one nutrient per 100 g (used by the substitution picker)."""
    foods = api.foods(food_ids)
    ranked = [(f["name"], float(f["per_100g"].get(nutrient, 0.0))) for f in foods.values()]
    return sorted(ranked, key=lambda pair: pair[1])


def nutrition_for(api: FoodData, lines: list[str], servings: int) -> dict[str, object]:
    ingredients = [ing for ing in map(parse_line, lines) if ing is not None]
    missing = link_ingredients(api, ingredients)
    return {
        "per_serving": per_serving(api, ingredients, servings),
        "unmatched": [ing.line for ing in missing],
    }
