"""The client profile of a hosted domain, for the public autoconfiguration routes.

Anyone may ask (mail clients ask before they have credentials), so the answer depends on
the domain only: a domain hosted here (an alias domain too) gets its profile, any other name
is `NotFound`. The mailbox part of an address is checked for syntax and never looked up, so
the answer for an existing and a missing mailbox is the same and these routes cannot be used
to find out which addresses exist. Reads only; the caller owns the transaction.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from postmeister.config import Settings
from postmeister.domain.access import Actor
from postmeister.domain.addresses.syntax import ParsedAddress, parse_address
from postmeister.domain.clientconfig.schemas import Account, ClientProfile, servers_from
from postmeister.domain.domains.service import get_domain


def domain_profile(
    session: Session, *, settings: Settings, domain: str, field: str = "domain"
) -> ClientProfile:
    """The profile of the hosted domain `domain` (any spelling: U-label, A-label, any case).

    Raises `InvalidInput` for a name that is not a domain, `NotFound` for one not hosted."""
    # The system actor: hosting is a public fact here (the MX records say as much), and
    # `visible_domains` stays the one query that decides what a domain is.
    hosted = get_domain(session, Actor.system(), domain, field=field)
    login_domain = hosted.alias_of.name if hosted.alias_of is not None else hosted.name
    return ClientProfile(
        domain=hosted.name,
        display_name=settings.client.display_name or hosted.display_name,
        login_domain=login_domain,
        servers=servers_from(settings.client, settings.client_host),
    )


def account_profile(
    session: Session, *, settings: Settings, address: str, field: str = "emailaddress"
) -> tuple[ClientProfile, Account]:
    """The profile of the address's domain and the account a client sets up for it.

    Raises `InvalidInput` for a malformed address, `NotFound` when its domain is not hosted;
    whether the mailbox exists is not asked."""
    parsed: ParsedAddress = parse_address(address, field=field)
    profile = domain_profile(session, settings=settings, domain=parsed.domain, field=field)
    return profile, profile.account(parsed.local_part)
