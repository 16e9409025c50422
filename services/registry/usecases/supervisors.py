"""Supervisors (质量督导员): registration (第五条, 第九条 attestations), updates, roster import."""

from __future__ import annotations

import builtins  # methods named `list` shadow the builtin in class-level annotations
import datetime as dt
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.orm import Session

from bjsv.registry.v1 import events_pb2
from common.api import Page
from common.errors import AlreadyExists, FailedPrecondition, PreconditionViolation
from services.registry import events as ev
from services.registry.domain import roster
from services.registry.domain import training as training_rules
from services.registry.domain.images import CheckedImage
from services.registry.domain.supervisors import SupervisorDraft, SupervisorType
from services.registry.domain.training import TrainingInput
from services.registry.storage import models as m
from services.registry.storage import repository as repo
from services.registry.usecases.context import Listing, RegistryContext, listing
from services.registry.usecases.errors import found, translated

T = TypeVar("T")


def get_supervisor(session: Session, *, supervisor_id: int) -> m.Supervisor:
    return found(repo.supervisor(session, supervisor_id=supervisor_id), f"supervisors/{supervisor_id}")


def register_supervisor(
    session: Session, *, draft: SupervisorDraft, photo: CheckedImage | None = None, now: dt.datetime
) -> m.Supervisor:
    """Register one supervisor (第五条); a second record for the same ID number is refused; an internal
    supervisor's institution must be registered first (第十二条)."""
    if repo.id_number_registered(session, id_number=draft.id_number):
        raise AlreadyExists(
            "ID_NUMBER_ALREADY_REGISTERED",
            "该居民身份证号已登记为质量督导员，不得重复登记",
            field_name="supervisor.id_number",
        )
    inst = None
    if draft.institution_number:
        inst = repo.institution(session, number=draft.institution_number)
        if inst is None:
            raise FailedPrecondition(
                "INSTITUTION_NOT_REGISTERED",
                [PreconditionViolation("registry.institution.registered", f"institutions/{draft.institution_number}",
                                       f"评价机构{draft.institution_number}未登记，须先登记评价机构（第十二条）")],
            )  # fmt: skip
    sup = repo.insert_supervisor(session, draft=draft, photo=photo, institution=inst, now=now)
    ev.publish(session, ev.SUPERVISOR_REGISTERED, f"supervisors/{sup.id}",
               events_pb2.SupervisorRegistered(supervisor=ev.supervisor_snapshot(session, sup)))  # fmt: skip
    return sup


def update_supervisor(session: Session, *, supervisor_id: int, changes: dict, now: dt.datetime) -> m.Supervisor:
    """changes: full_name, phone, photo (CheckedImage|None), attestations (tuple), training (Training|None:
    adds a training record), affiliations (tuple, replaces the list, 第十六条)."""
    sup = get_supervisor(session, supervisor_id=supervisor_id)
    for key, value in changes.items():
        if key == "photo":
            repo.set_photo(sup, value)
        elif key == "attestations":
            repo.set_attestations(session, sup, value, now)
        elif key == "training":
            if value is not None:
                repo.add_training(session, supervisor_id=sup.id, training=value, now=now)
        elif key == "affiliations":
            repo.set_affiliations(session, supervisor_id=sup.id, items=value)
        else:
            setattr(sup, key, value)
    sup.updated_at = now
    session.flush()
    ev.publish(session, ev.SUPERVISOR_UPDATED, f"supervisors/{sup.id}",
               events_pb2.SupervisorUpdated(supervisor=ev.supervisor_snapshot(session, sup),
                                            changed_fields=sorted(changes)))  # fmt: skip
    return sup


@translated
def record_training(
    session: Session, *, supervisor_id: int, training: TrainingInput, today: dt.date, now: dt.datetime
) -> m.TrainingRecord:
    """One dated training (第十条), by the trainer 第十一条 (external) or 第十二条 (internal) names."""
    sup = get_supervisor(session, supervisor_id=supervisor_id)
    inst = session.get(m.Institution, sup.institution_id) if sup.institution_id else None
    checked = training_rules.validate_training(
        training, kind=SupervisorType(sup.type), institution=f"institutions/{inst.number}" if inst else "", today=today
    )
    row = repo.add_training(session, supervisor_id=sup.id, training=checked, now=now)
    sup.updated_at = now
    ev.publish(session, ev.SUPERVISOR_UPDATED, f"supervisors/{sup.id}",
               events_pb2.SupervisorUpdated(supervisor=ev.supervisor_snapshot(session, sup),
                                            changed_fields=["training"]))  # fmt: skip
    return row


def trainings(session: Session, *, supervisor_id: int) -> list[m.TrainingRecord]:
    get_supervisor(session, supervisor_id=supervisor_id)
    return repo.training_rows(session, supervisor_ids=[supervisor_id])


def import_roster(session: Session, *, drafts: list[SupervisorDraft], now: dt.datetime) -> list[int]:
    """Register every draft in this one transaction (all or nothing)."""
    return [register_supervisor(session, draft=d, now=now).id for d in drafts]


class Supervisors:
    def __init__(self, ctx: RegistryContext) -> None:
        self.ctx = ctx

    async def register(
        self, draft: SupervisorDraft, photo: CheckedImage | None, render: Callable[[Session, m.Supervisor], T]
    ) -> T:
        now = self.ctx.now()
        return await self.ctx.write(lambda s: render(s, register_supervisor(s, draft=draft, photo=photo, now=now)))

    async def get(self, supervisor_id: int, render: Callable[[Session, m.Supervisor], T]) -> T:
        return await self.ctx.read(lambda s: render(s, get_supervisor(s, supervisor_id=supervisor_id)))

    async def list(self, page: Page, render: Callable[[Session, m.Supervisor], T], **filters) -> Listing[T]:
        def page_of(s: Session) -> Listing[T]:
            found = repo.list_supervisors(s, page=page, **filters)
            repo.prefetch_details(s, [r.id for r in found[0][: page.size]])
            return listing(s, found, page, key="id", render=render)

        return await self.ctx.read(page_of)

    async def update(self, supervisor_id: int, changes: dict, render: Callable[[Session, m.Supervisor], T]) -> T:
        now = self.ctx.now()
        return await self.ctx.write(
            lambda s: render(s, update_supervisor(s, supervisor_id=supervisor_id, changes=changes, now=now))
        )

    async def record_training(
        self, supervisor_id: int, training: TrainingInput, render: Callable[[m.TrainingRecord], T]
    ) -> T:
        today, now = self.ctx.today(), self.ctx.now()
        return await self.ctx.write(lambda s: render(record_training(
            s, supervisor_id=supervisor_id, training=training, today=today, now=now
        )))  # fmt: skip

    async def trainings(self, supervisor_id: int, render: Callable[[m.TrainingRecord], T]) -> builtins.list[T]:
        return await self.ctx.read(lambda s: [render(r) for r in trainings(s, supervisor_id=supervisor_id)])

    async def import_roster(
        self, rows: builtins.list[tuple[int, dict[str, str]]], *, validate_only: bool, partial: bool
    ) -> tuple[builtins.list[roster.RowError], builtins.list[int]]:
        """Validate every row; import all of them (or, with `partial`, the good ones) in one transaction.
        A validate-only run reads only; nothing is imported when a row fails and `partial` is not set."""
        today, now = self.ctx.today(), self.ctx.now()

        def run(s: Session) -> tuple[list[roster.RowError], list[int]]:
            good, errors = roster.validate_rows(
                rows, today=today,
                institution_exists=lambda n: repo.institution_exists(s, number=n),
                id_number_registered=lambda n: repo.id_number_registered(s, id_number=n),
            )  # fmt: skip
            if validate_only or (errors and not partial):
                return errors, []
            return errors, import_roster(s, drafts=[d for _, d in good], now=now)

        return await (self.ctx.read(run) if validate_only else self.ctx.write(run))

    async def counts(self, district_code: str) -> builtins.list[tuple[str, str, str, int]]:
        return await self.ctx.read(repo.counts, district_code=district_code)
