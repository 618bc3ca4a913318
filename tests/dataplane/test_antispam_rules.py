"""The antispam milter's rules as pure functions: what each policy does with each verdict,
and which recipients share a transaction."""

from __future__ import annotations

import pytest

from postmeister.dataplane.milter.antispam import (
    OTHER_POLICY_REPLY,
    REJECT_REPLY,
    Edits,
    Scan,
    admit,
    edits_for,
    lookup_policy,
    normalise_recipient,
)

SPAM = Scan(action="reject", score=1500.0)
LIKELY = Scan(action="add header", score=7.5)
HAM = Scan(action="no action", score=-0.1)
HEADERS = [("From", "a@b.example"), ("Subject", " Hello there"), ("To", "c@d.example")]
MARKS = (("X-Spam", "Yes"),)


def marks(scan: Scan) -> tuple[tuple[str, str], ...]:
    return (*MARKS, ("X-Spam-Score", f"{scan.score:.2f}"))


def test_reject_refuses_spam_and_marks_likely_spam() -> None:
    assert edits_for("reject", SPAM, HEADERS) == Edits(reply=REJECT_REPLY)
    assert REJECT_REPLY.startswith("550 5.7.1")
    assert edits_for("reject", LIKELY, HEADERS) == Edits(add=marks(LIKELY))
    assert edits_for("reject", HAM, HEADERS) == Edits()


@pytest.mark.parametrize("scan", [SPAM, LIKELY])
def test_junk_folder_marks_spam_for_sieve(scan: Scan) -> None:
    assert edits_for("junk-folder", scan, HEADERS) == Edits(add=marks(scan))


def test_subject_rewrite_tags_the_subject() -> None:
    assert edits_for("subject-rewrite", SPAM, HEADERS) == Edits(
        change=(("Subject", 1, "[SPAM] Hello there"),), add=marks(SPAM)
    )
    no_subject = [("From", "a@b.example")]
    assert edits_for("subject-rewrite", SPAM, no_subject) == Edits(
        add=(*marks(SPAM), ("Subject", "[SPAM]"))
    )
    assert edits_for("subject-rewrite", HAM, HEADERS) == Edits()


@pytest.mark.parametrize("scan", [SPAM, LIKELY, HAM])
def test_none_leaves_everything_untouched(scan: Scan) -> None:
    forged = [*HEADERS, ("X-Spam", "Yes")]
    assert edits_for("none", scan, forged) == Edits()


def test_a_senders_own_spam_marks_are_removed() -> None:
    forged = [("X-Spam", "No"), *HEADERS, ("x-spam", "Yes")]
    # Highest index first, so that deleting one does not renumber the next.
    removal = (("X-Spam", 2, ""), ("X-Spam", 1, ""))
    assert edits_for("junk-folder", HAM, forged) == Edits(change=removal)
    assert edits_for("junk-folder", SPAM, forged) == Edits(change=removal, add=marks(SPAM))


def test_one_policy_per_transaction() -> None:
    assert admit(None, "reject")
    assert admit("reject", "reject")
    assert not admit("reject", "none")
    assert not admit("junk-folder", "subject-rewrite")
    assert OTHER_POLICY_REPLY.startswith("452 4.5.3")


def test_recipients_are_looked_up_in_canonical_form() -> None:
    policies = {"anna@xn--mller-kva.example": "none", "team@example.org": "junk-folder"}
    assert normalise_recipient("<Anna@Müller.Example>") == "anna@xn--mller-kva.example"
    assert lookup_policy(policies.get, "anna@xn--mller-kva.example") == "none"
    # A +detail address has its base address's policy.
    assert lookup_policy(policies.get, "team+news@example.org") == "junk-folder"
    # Unknown (Postfix refused it already) or garbled: the strictest policy.
    assert lookup_policy(policies.get, "ghost@example.org") == "reject"
    assert lookup_policy({"odd@example.org": "bogus"}.get, "odd@example.org") == "reject"


def test_idn_recipients_find_their_own_policy_not_the_default() -> None:
    # IDNA 2008: straße is xn--strae-oqa, never strasse (which IDNA 2003 would give).
    policies = {"ceo@xn--strae-oqa.example": "none", "ceo@strasse.example": "subject-rewrite"}
    for spelling in (
        "<ceo@straße.example>",
        "<CEO@STRAßE.EXAMPLE>",
        "<ceo@xn--strae-oqa.example>",
        "<Ceo@XN--STRAE-OQA.example>",
    ):
        address = normalise_recipient(spelling)
        assert address == "ceo@xn--strae-oqa.example"
        assert lookup_policy(policies.get, address) == "none"
    assert lookup_policy(policies.get, "ceo@strasse.example") == "subject-rewrite"
    greek = {"boss@xn--0xaajbq.example": "none"}  # σοφος.example, final sigma
    assert normalise_recipient("<boss@σοφος.example>") == "boss@xn--0xaajbq.example"
    assert lookup_policy(greek.get, "boss@xn--0xaajbq.example") == "none"


def test_a_recipient_without_canonical_form_is_not_looked_up() -> None:
    assert normalise_recipient("<\u212aate@strasse.example>") is None
    assert normalise_recipient("<ceo@exa..mple>") is None
