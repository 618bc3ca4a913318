"""Rules for a domain's catch-all and alias relation, as pure checks: no session, no SQL.

The catch-all targets are judged by the very rule forward targets are judged by
(`addresses.rules.check_targets`); what only the database knows (does this address exist,
whose domain is that) is asked by the service and judged here.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Final

from postmeister.domain.addresses import rules as address_rules
from postmeister.errors import Conflict, FieldProblem

CATCHALL_FIELD: Final = "catchall"
ALIAS_FIELD: Final = "alias_of"


class Rule:
    """`rule` codes of the problems below (shown as JSON:API error codes)."""

    FOREIGN_DOMAIN: Final = "foreign_domain"
    FOREIGN_PACKAGE: Final = "foreign_package"
    ALIAS_CHAIN: Final = "alias_chain"
    CATCHALL_LOOP: Final = "catchall_loop"
    ALIAS_CATCHALL: Final = "alias_catchall"


class DomainHasAddresses(Conflict):
    """The domain still holds addresses (or alias domains); deleting needs `cascade`."""

    def __init__(self, domain: str, addresses: int, aliases: int) -> None:
        what = []
        if addresses:
            what.append(f"{addresses} address(es)")
        if aliases:
            what.append(f"{aliases} alias domain(s)")
        super().__init__(
            f"domain {domain!r} still has {' and '.join(what)}; delete them first or "
            "ask for cascade=true"
        )


class AliasDomainsStayWithTheirCustomer(Conflict):
    """A domain in an alias relation cannot change its customer: the pair would span two
    customers, and the data plane's tenant boundary (`SENDER_LOOKUP`) assumes it never does."""

    def __init__(self, domain: str) -> None:
        super().__init__(
            f"domain {domain!r} is an alias domain or has alias domains; remove the alias "
            "relation before moving it to another customer"
        )


def catchall_targets(values: Sequence[str]) -> tuple[list[str], list[FieldProblem]]:
    """The canonical catch-all targets and every rule they break: the forward-target rule
    itself (at most 100, valid addresses, none twice). An empty list switches the catch-all
    off, so the list is judged like a mailbox's (optional) targets, not a forward's."""
    return address_rules.check_targets(values, own=None, kind="mailbox", field=CATCHALL_FIELD)


def catchall_loop_problems(
    targets: Sequence[str], own_domains: Collection[str], existing: Collection[str]
) -> list[FieldProblem]:
    """A target in the domain itself (or one of its alias names) must be an existing
    address there: an unknown one would be caught again, and again."""
    problems = []
    for index, target in enumerate(targets):
        if target.rpartition("@")[2] in own_domains and target not in existing:
            problems.append(
                FieldProblem(
                    f"{CATCHALL_FIELD}[{index}]",
                    f"{target} is no address of this domain; it would be caught again",
                    Rule.CATCHALL_LOOP,
                )
            )
    return problems


def alias_problems(
    *,
    domain_id: int,
    customer_id: int,
    main_id: int,
    main_customer_id: int,
    main_is_alias: bool,
    has_aliases: bool,
    has_catchall: bool,
) -> list[FieldProblem]:
    """Whether the domain may become an alias domain of `main`: same customer, one level
    (main is no alias itself, and the domain has no aliases of its own), not itself, and no
    catch-all of its own (an alias domain uses its main domain's)."""
    problems = []
    if main_customer_id != customer_id:
        problems.append(
            FieldProblem(
                ALIAS_FIELD,
                "only a domain of the same customer can be aliased",
                Rule.FOREIGN_DOMAIN,
            )
        )
    if main_id == domain_id or main_is_alias or has_aliases:
        problems.append(
            FieldProblem(
                ALIAS_FIELD,
                "alias domains are one level: neither domain may be an alias of another, "
                "nor a domain its own alias, nor a domain with alias domains an alias",
                Rule.ALIAS_CHAIN,
            )
        )
    if has_catchall:
        problems.append(alias_catchall_problem())
    return problems


def alias_catchall_problem() -> FieldProblem:
    return FieldProblem(
        CATCHALL_FIELD,
        "an alias domain has no catch-all of its own: it uses its main domain's",
        Rule.ALIAS_CATCHALL,
    )
