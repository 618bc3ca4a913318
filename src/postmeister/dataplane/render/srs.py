"""SRS (Sender Rewriting Scheme) with Debian's postsrsd: the main.cf lines and its command.

Why: a forward to another provider delivers the message from our address with the original
envelope sender, so the receiver's SPF check of that sender's domain fails (and DMARC then
rejects mail of senders who publish p=reject). With SRS the envelope sender becomes
`SRS0=hash=time=original.example=local@<srs domain>`, a domain whose SPF names us; a bounce
to that address is turned back into the original sender and delivered to them.

How Postfix does it (canonical(5), generic(5), postconf(5)):

- `sender_canonical_maps`, applied by cleanup when mail is received, envelope sender only.
  First an SQL lookup that answers the address itself when its domain is hosted (the
  contract view of the hosted domains, alias domains included): the first map that knows
  a key wins, so postsrsd is not asked and mail from hosted senders, also between hosted
  domains, keeps its sender. Every other sender goes to postsrsd's forward table. The null
  sender (bounces) is never looked up by cleanup, so it stays null.
- cleanup cannot know where a message will go (a message has one envelope sender for all
  its recipients), so mail from outside to a hosted mailbox is rewritten too. The LMTP
  client then reverses it (`lmtp_generic_maps`, envelope and header addresses as they are
  delivered): the mailbox sees the original sender as Return-Path, and Sieve's envelope
  tests and autoreplies see it too. postsrsd answers "not found" for any address that is
  not one of its own, so other addresses pass unchanged.
- `recipient_canonical_maps`: postsrsd's reverse table turns a valid SRS address back into
  the original sender; every other recipient is not found there and stays as it is.
- The SRS domain must be accepted at RCPT time so that bounces reach cleanup: it is a
  `relay_domains` entry whose `relay_recipient_maps` is the same reverse table, so only an
  address postsrsd can verify (its hash, its age) is accepted; a forged or expired one gets
  550 at RCPT, never a bounce of a bounce. The domain must therefore not be one of Postfix's
  `mydestination` (README "SRS").
"""

from __future__ import annotations

from typing import Final

from postmeister.dataplane.render.model import Endpoint, Srs

# The Postfix map (`postfix.SRS_HOSTED_SENDERS`): the address itself when its domain is hosted.
# `%u` makes Postfix skip keys without a local part (the `@domain` probe).
HOSTED_SENDER_QUERY: Final = "SELECT '%u@%d' FROM dataplane_v1_domains WHERE domain = '%d'"
POSTSRSD: Final = "/usr/sbin/postsrsd"


def table(endpoint: Endpoint) -> str:
    """A postsrsd lookup table as Postfix names it (the tcp_table protocol of postsrsd 1.x)."""
    return f"tcp:{endpoint}"


def main_cf_lines(srs: Srs, hosted_senders: str) -> list[str]:
    """The main.cf settings; `hosted_senders` is the reference of the hosted-senders map."""
    return [
        "# SRS (render/srs.py): an envelope sender outside the hosted domains becomes\n",
        f"# SRS0=...@{srs.domain} when mail is received (postsrsd), so that a forward to\n",
        "# another provider passes SPF there; hosted senders answer themselves first.\n",
        f"postmeister_srs_forward = {table(srs.forward)}\n",
        f"postmeister_srs_reverse = {table(srs.reverse)}\n",
        f"sender_canonical_maps = {hosted_senders}, $postmeister_srs_forward\n",
        "sender_canonical_classes = envelope_sender\n",
        "# A bounce to an SRS address goes back to the original sender.\n",
        "recipient_canonical_maps = $postmeister_srs_reverse\n",
        "recipient_canonical_classes = envelope_recipient\n",
        "# The SRS domain accepts exactly the addresses postsrsd can verify (else 550).\n",
        f"relay_domains = {srs.domain}\n",
        "relay_recipient_maps = $postmeister_srs_reverse\n",
        "# Hosted mailboxes see the original sender again (Return-Path, Sieve).\n",
        "lmtp_generic_maps = $postmeister_srs_reverse\n",
    ]


def postsrsd_arguments(srs: Srs, *, secret_file: str) -> list[str]:
    """postsrsd's command line after the program: in the foreground, on the two tables'
    ports (postsrsd 1.x listens on one address for both); the secret file is passed as
    the caller sees it (the unit reads it through a systemd credential)."""
    return [
        "-s",
        secret_file,
        "-d",
        srs.domain,
        "-l",
        srs.forward.host,
        "-f",
        str(srs.forward.port),
        "-r",
        str(srs.reverse.port),
    ]
