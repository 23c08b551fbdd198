"""Workflow statuses as stable codes, which of them are finished or told to the relative, and
their labels for staff and for relatives (one place, so the two never drift apart)."""

from __future__ import annotations

from enum import StrEnum

from bot.i18n import N_


class Status(StrEnum):
    """A workflow status, in the order staff move a case (or a person) along."""

    NEW = "new"
    IN_REVIEW = "in_review"
    NEEDS_INFO = "needs_info"
    VERIFIED = "verified"
    REFERRED = "referred"
    LOCATED = "located"
    CLOSED = "closed"
    #: Set only by the relative's erasure, never by staff.
    WITHDRAWN = "withdrawn"


#: Statuses staff can set, in workflow order.
STATUSES: tuple[str, ...] = tuple(s.value for s in Status if s is not Status.WITHDRAWN)
#: Statuses a case leaves the open list with.
FINISHED: tuple[str, ...] = (Status.CLOSED.value, Status.WITHDRAWN.value)
#: Status changes the relative is told about: all but "new", which is what they were told at
#: submission.
NOTIFY_STATUSES: frozenset[str] = frozenset(STATUSES) - {Status.NEW.value}

#: What staff read.
STAFF_LABELS: dict[str, str] = {
    "new": N_("New"),
    "in_review": N_("In review"),
    "needs_info": N_("Needs information"),
    "verified": N_("Verified"),
    "referred": N_("Referred"),
    "located": N_("Located"),
    "closed": N_("Closed"),
    "withdrawn": N_("Withdrawn"),
}

#: What a relative reads about a case.
RELATIVE_LABELS: dict[str, str] = {
    "new": N_("received, waiting for a volunteer"),
    "in_review": N_("a volunteer is working on it"),
    "needs_info": N_("we need more information from you"),
    "verified": N_("checked and confirmed"),
    "referred": N_("sent to an international organisation"),
    "located": N_("the person has been found"),
    "closed": N_("closed"),
    "withdrawn": N_("withdrawn"),
}
