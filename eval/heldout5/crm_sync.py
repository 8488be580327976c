"""Nightly sync of shop customers into the CRM.

Runs as a Celery task: pulls the customers changed since the last successful
run from the shop API, maps them to CRM contacts, attaches each one to the
company account of its email domain and upserts them in batches.
"""

from __future__ import annotations

import json
import logging
import os
from datetime import datetime, timezone
from pathlib import Path

import requests
from celery import shared_task

log = logging.getLogger(__name__)

SHOP_API = os.environ.get("SHOP_API", "https://shop.internal/api/v1")
CRM_API = os.environ.get("CRM_API", "https://crm.example.com/api/v2")
CRM_TOKEN = os.environ.get("CRM_TOKEN", "")
SHOP_TOKEN = os.environ.get("SHOP_TOKEN", "")
MARKER = Path(os.environ.get("CRM_SYNC_MARKER", "/var/lib/crm-sync/last_run.json"))
BATCH_SIZE = 100
HTTP_TIMEOUT = (5, 30)
FREE_MAIL = {"gmail.com", "outlook.com", "hotmail.com", "yahoo.com", "icloud.com", "gmx.de"}


def _session(token: str) -> requests.Session:
    s = requests.Session()
    s.headers.update({"Authorization": f"Bearer {token}", "Accept": "application/json"})
    return s


def _last_run() -> str:
    """ISO timestamp of the last successful sync; the epoch on the first run."""
    try:
        return json.loads(MARKER.read_text())["finished_at"]
    except (FileNotFoundError, KeyError, json.JSONDecodeError):
        return "1970-01-01T00:00:00+00:00"


def _save_run(finished_at: str, stats: dict) -> None:
    MARKER.parent.mkdir(parents=True, exist_ok=True)
    tmp = MARKER.with_suffix(".tmp")
    tmp.write_text(json.dumps({"finished_at": finished_at, **stats}))
    tmp.replace(MARKER)


def _changed_customers(shop: requests.Session, since: str) -> list[dict]:
    """Customers changed since `since`, following the shop API's pagination."""
    customers: list[dict] = []
    url: str | None = f"{SHOP_API}/customers"
    params: dict | None = {"updated_since": since, "per_page": 250}
    while url:
        resp = shop.get(url, params=params, timeout=HTTP_TIMEOUT)
        resp.raise_for_status()
        body = resp.json()
        customers.extend(body["items"])
        url, params = body.get("next"), None
    return customers


def _existing_emails(crm: requests.Session) -> list[str]:
    """Every contact email the CRM already holds, lower-cased."""
    emails: list[str] = []
    page = 1
    while True:
        resp = crm.get(f"{CRM_API}/contacts", params={"fields": "email", "page": page}, timeout=HTTP_TIMEOUT)
        resp.raise_for_status()
        data = resp.json()["data"]
        if not data:
            return emails
        emails.extend(c["email"].lower() for c in data if c.get("email"))
        page += 1


def _account_id(crm: requests.Session, email: str) -> str | None:
    """The CRM company account for the email's domain, if there is one."""
    domain = email.rsplit("@", 1)[-1]
    if domain in FREE_MAIL:
        return None
    resp = crm.get(f"{CRM_API}/accounts", params={"domain": domain}, timeout=HTTP_TIMEOUT)
    resp.raise_for_status()
    matches = resp.json()["data"]
    return matches[0]["id"] if matches else None


def _to_contact(customer: dict, email: str, account_id: str | None, is_new: bool) -> dict:
    contact = {
        "email": email,
        "first_name": customer.get("first_name") or "",
        "last_name": customer.get("last_name") or "",
        "phone": customer.get("phone"),
        "account_id": account_id,
        "custom": {"shop_customer_id": customer["id"], "orders": customer.get("orders_count", 0)},
    }
    if is_new:
        contact["lifecycle_stage"] = "customer"
        contact["source"] = "webshop"
    return contact


def _push_batch(crm: requests.Session, batch: list[dict]) -> None:
    """Upsert one batch of contacts; the CRM answers 429 when we go too fast."""
    for _ in range(8):
        resp = crm.post(f"{CRM_API}/contacts/batch_upsert", json={"contacts": batch}, timeout=HTTP_TIMEOUT)
        if resp.status_code == 429 or resp.status_code >= 500:
            log.warning("CRM busy (HTTP %s), retrying batch of %d", resp.status_code, len(batch))
            continue
        resp.raise_for_status()
        return
    raise RuntimeError(f"CRM refused a batch of {len(batch)} contacts eight times")


@shared_task(bind=True, max_retries=3, default_retry_delay=600, acks_late=True)
def sync_customers(self, since: str | None = None) -> dict:
    """Push every shop customer changed since the last run into the CRM."""
    since = since or _last_run()
    started = datetime.now(timezone.utc).isoformat()
    shop, crm = _session(SHOP_TOKEN), _session(CRM_TOKEN)
    stats = {"created": 0, "updated": 0, "skipped": 0}
    try:
        customers = _changed_customers(shop, since)
        known = _existing_emails(crm)
        batch: list[dict] = []
        for customer in customers:
            email = (customer.get("email") or "").strip().lower()
            if not email or customer.get("test_account"):
                stats["skipped"] += 1
                continue
            is_new = email not in known
            stats["created" if is_new else "updated"] += 1
            batch.append(_to_contact(customer, email, _account_id(crm, email), is_new))
            if len(batch) >= BATCH_SIZE:
                _push_batch(crm, batch)
                batch = []
        if batch:
            _push_batch(crm, batch)
    except requests.RequestException as exc:
        log.warning("CRM sync failed, will retry: %s", exc)
        raise self.retry(exc=exc) from exc
    finally:
        shop.close()
        crm.close()
    _save_run(started, stats)
    log.info("CRM sync since %s: %s", since, stats)
    return stats
