"""Every table of the product, imported in one place so the metadata is complete for migrations and tests.

Each folder owns its tables (`app/<folder>/tables.py`) and is the only one that writes them."""

from app.audit.tables import AuditEntry, AuditHead
from app.cards.tables import Card, CardAction, EventJob
from app.jobs.tables import Job
from app.changes.tables import AppliedChange, ChangeRequestRow
from app.data.tables import Consent, Customer, Event, OutreachAttempt
from app.drafting.tables import Draft
from app.feedback.tables import Feedback
from app.intents.tables import EventIntent, IntentLabel, ServiceEvent
from app.library.tables import Template, TemplateEvent, TemplateVersion
from app.models.tables import Decision, ModelVersion, RegistryEvent, ScoreRun
from app.review.tables import PolicySuggestion, Release, Review
from app.store.base import Base
from app.users.tables import User

__all__ = ["AppliedChange", "AuditEntry", "AuditHead", "Base", "Card", "CardAction", "ChangeRequestRow", "Consent",
           "Customer", "Decision", "Draft", "Event", "EventIntent", "EventJob", "Feedback", "IntentLabel", "Job", "ModelVersion",
           "OutreachAttempt", "PolicySuggestion", "RegistryEvent", "Release", "Review", "ScoreRun", "ServiceEvent",
           "Template", "TemplateEvent", "TemplateVersion", "User"]
