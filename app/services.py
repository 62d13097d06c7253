"""The composition root: everything the product is built from, made once per process.

The API, the pages, the CLI, the background worker and the evaluation scripts all start here: settings,
the store, the clock, and the parts that are slow to build (the embedding model, the template index, the
drafter, the guardrails) made on first use and shared. Edges open units of work through it; services below
take the session they are given.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cached_property
from typing import Any, TypeVar

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from app.clock import SYSTEM_CLOCK, Clock
from app.config import Settings
from app.errors import Conflict
from app.store.db import open_store, reading, unit_of_work

T = TypeVar("T")


class Services:
    """Settings, store, clock, and the drafting and review machinery, built once and handed to every edge."""

    def __init__(self, settings: Settings, *, clock: Clock | None = None, store: sessionmaker[Session] | None = None,
                 embedder: Any = None, llm_client: Any = None, reviewer: Any = None, index: Any = None) -> None:
        self.settings = settings
        self.clock = clock or SYSTEM_CLOCK
        self.store = store if store is not None else open_store(settings.resolved_database_url)
        self._embedder, self._llm_client = embedder, llm_client
        if reviewer is not None:
            self.reviewer = reviewer
        if index is not None:
            self.index = index

    # --- units of work ------------------------------------------------------------------------------------

    @contextmanager
    def unit_of_work(self) -> Iterator[Session]:
        """One user action: one transaction, committed on success, rolled back on any error."""
        with unit_of_work(self.store) as session:
            yield session

    @contextmanager
    def read(self) -> Iterator[Session]:
        """Reads only (a page, a prepare step before the write)."""
        with reading(self.store) as session:
            yield session

    def query(self, action: Callable[[Session], T]) -> T:
        """Run `action` on a read session that is closed as soon as it returns (a connection is held only
        while the reads run, not while a response is sent)."""
        with self.read() as session:
            return action(session)

    def write(self, action: Callable[[Session], T]) -> T:
        """Run `action` as one unit of work. Two requests racing on one unique key (an Idempotency-Key, a
        draft revision) cannot both commit; the loser is run once more, where it sees the winner's work and
        answers accordingly (a replay, or a 409)."""
        try:
            with self.unit_of_work() as session:
                return action(session)
        except IntegrityError:
            pass
        try:
            with self.unit_of_work() as session:
                return action(session)
        except IntegrityError as exc:
            raise Conflict("someone else changed this at the same moment: reload and try again") from exc

    def now(self):  # noqa: ANN201 - a datetime
        return self.clock.now()

    # --- the parts, made on first use --------------------------------------------------------------------

    @cached_property
    def embedder(self) -> Any:
        if self._embedder is not None:
            return self._embedder
        from app.library.index import default_embedder

        return default_embedder(self.settings.embedding_model)

    @cached_property
    def index(self) -> Any:
        from app.library.index import TemplateIndex

        return TemplateIndex.configured(self.settings, embedder=self.embedder)

    @cached_property
    def drafter(self) -> Any:
        from app.drafting.service import Drafter

        return Drafter(self.settings, client=self._llm_client, embedder=self._embedder, injection=self.injection)

    @property
    def injection(self) -> Any:
        """The detector of instruction-like customer text, shared by the drafter (which keeps flagged text out
        of the prompt) and the reviewer (which blocks a draft that echoes it)."""
        return self.reviewer.injection

    @cached_property
    def reviewer(self) -> Any:
        from app.review.checks import Reviewer

        return Reviewer.from_folder(self.settings.guardrails_dir, self.embedder, self.settings.model_cache)

    @cached_property
    def intents(self) -> Any:
        """The intent classifier of the company's taxonomy (script_library/intents.yaml), trained on first use."""
        from app.intents.service import IntentService
        from app.intents.taxonomy import Taxonomy

        # The personal-data patterns redacted before classifying are the review policy's own.
        return IntentService(Taxonomy.load(self.settings.library_dir / "intents.yaml"), self.embedder,
                             self.reviewer.policy.pii_patterns)

    @cached_property
    def changes(self) -> Any:
        """Triage of customer change requests (script_library/changes.yaml), trained on first use."""
        from app.changes.taxonomy import ChangeTaxonomy
        from app.changes.triage import ChangeTriage

        return ChangeTriage(ChangeTaxonomy.load(self.settings.library_dir / "changes.yaml"), self.embedder,
                            self.injection)

    @property
    def routing(self) -> Any:
        """The routing policy (script_library/routing.yaml), checked against the taxonomy's routes."""
        from app.intents.routing import RoutingPolicy

        taxonomy = self.intents.taxonomy
        return RoutingPolicy.load(self.settings.library_dir / "routing.yaml",
                                  {name: spec.route for name, spec in taxonomy.intents.items()})

    @property
    def profile(self) -> Any:
        """The company profile (re-read when its file changes)."""
        from app.drafting.facts import load_profile

        return load_profile(self.settings.company_profile)

    @property
    def contact_policy(self) -> Any:
        from app.policy.rules import load_policy

        return load_policy(self.settings.contact_policy_file)

    @property
    def objectives(self) -> Any:
        """The objectives and KPIs with their stamped version (re-read, like the policy, on every use)."""
        from app.models.objectives import load_objectives

        return load_objectives(self.settings.objectives_file)

    @property
    def reason_table(self) -> Any:
        from app.models.reasons import load_reason_table

        return load_reason_table(self.settings.reason_templates_file)

    def close(self) -> None:
        """Stop what this process started (the local model server) and release the store's connections."""
        drafter = self.__dict__.get("drafter")
        if drafter is not None:
            drafter.close()
        self.store.kw["bind"].dispose()


def build(settings: Settings | None = None, **overrides: Any) -> Services:
    """The services for these settings (the process's own, read from the environment, by default)."""
    from app.config import get_settings

    return Services(settings or get_settings(), **overrides)
