"""The process's Prometheus counters (issue 15 point 3), in one registry `/metrics` serves.

Counters are counted where things happen (clients, receiver, inbox worker); levels read from the
database (inbox depth, budget left, run durations) are collected at scrape time by services/serve/ops.py.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter

REGISTRY = CollectorRegistry(auto_describe=True)

API_CALLS = Counter("credly_console_api_calls", "API calls sent, by service and route (attempts, retries included).",
                    ["service", "route"], registry=REGISTRY)
API_RATE_LIMITED = Counter("credly_console_api_rate_limited", "HTTP 429 responses received, by service and route.",
                           ["service", "route"], registry=REGISTRY)
DELIVERIES = Counter("credly_console_webhook_deliveries", "Webhook requests: accepted, duplicate, or refused by reason.",
                     ["source", "outcome", "reason"], registry=REGISTRY)
EVENTS = Counter("credly_console_events_processed", "Inbox events processed, by flow and outcome (done, skipped, failed).",
                 ["flow", "outcome"], registry=REGISTRY)
