"""The dashboard's figures as JSON."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from fastapi import APIRouter

from app.api.deps import Analyst, StoreDep
from app.cards import metrics

router = APIRouter(prefix="/api", tags=["metrics"])


@router.get("/metrics")
def get_metrics(user: Analyst, factory: StoreDep) -> dict[str, Any]:
    return metrics.compute(factory, now=datetime.now(timezone.utc))
