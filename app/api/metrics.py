"""The dashboard's figures as JSON."""

from __future__ import annotations

from fastapi import APIRouter

from app.cards import metrics
from app.cards.metrics import Metrics
from app.http.deps import Analyst, ServicesDep

router = APIRouter(prefix="/api", tags=["metrics"])


@router.get("/metrics")
def get_metrics(user: Analyst, services: ServicesDep) -> Metrics:
    objectives = services.objectives[0]
    return services.query(lambda s: metrics.compute(session=s, now=services.now(), objectives=objectives))
