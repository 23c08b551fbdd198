"""Workflow statuses as stable codes, which of them are finished or told to the relative, their
labels for staff and for relatives, and the rule that derives a case's status from its persons'.

Each missing person of a case has a status of their own (a brother released, a mother still
missing). The case's status is derived from them (derive_case_status):
- withdrawn when the relative erased the case;
- closed when every person is closed;
- otherwise the least advanced status, in workflow order, among the persons still open
  (closed persons left out): a case is as far along as the person it still waits on.
"""

from __future__ import annotations

from collections.abc import Iterable
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
    "located": N_("we have news of where the person is"),
    "closed": N_("closed"),
    "withdrawn": N_("withdrawn"),
}

#: What a relative reads about one person in a status notice (never "found": a family reads
#: that as "free and safe").
PERSON_NOTICE_LABELS: dict[str, str] = {
    "in_review": N_("a volunteer is working on it"),
    "needs_info": N_("we need more information from you"),
    "verified": N_("the information has been checked and confirmed"),
    "referred": N_("the case has been passed to an international organisation"),
    "located": N_("we have news of where this person is"),
    "closed": N_("the work on it is closed"),
}

#: Whom a notice concerns, from the relative's side, by the relation they gave.
WHOM: dict[str, str] = {
    "father": N_("your father %(name)s"),
    "mother": N_("your mother %(name)s"),
    "brother": N_("your brother %(name)s"),
    "sister": N_("your sister %(name)s"),
    "husband": N_("your husband %(name)s"),
    "wife": N_("your wife %(name)s"),
    "son": N_("your son %(name)s"),
    "daughter": N_("your daughter %(name)s"),
    "grandparent": N_("your grandparent %(name)s"),
    "grandchild": N_("your grandchild %(name)s"),
    "other_relative": N_("your relative %(name)s"),
}
#: When the relation is not known or not a family one.
WHOM_OTHER = N_("%(name)s")
#: When the names cannot be read (the private key is offline).
WHOM_NUMBERED = N_("the person no. %(person)s in your report")


def order(status: str) -> int:
    """Where `status` stands in the workflow (withdrawn and unknown codes last)."""
    return STATUSES.index(status) if status in STATUSES else len(STATUSES)


def is_backward(old: str, new: str) -> bool:
    """A move back in the workflow (verified → in_review): the relative is not told."""
    return order(new) < order(old)


def derive_case_status(statuses: Iterable[str]) -> str:
    """The case's status from its persons' (the rule in this module's docstring)."""
    persons = [s for s in statuses if s != Status.WITHDRAWN]
    if not persons:
        return Status.WITHDRAWN.value
    still_open = [s for s in persons if s != Status.CLOSED]
    if not still_open:
        return Status.CLOSED.value
    return min(still_open, key=order)
