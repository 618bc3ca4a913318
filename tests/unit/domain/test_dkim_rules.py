"""The pure DKIM rules: selector names, the TXT record, key states, generated keys."""

from __future__ import annotations

import base64
import datetime as dt

from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_der_public_key, load_pem_private_key

from postmeister.domain.dkim import rules


def test_selectors_take_the_next_free_letter_and_are_never_reused() -> None:
    first = rules.next_selector(prefix="pm", year=2026, algorithm="rsa", taken=())
    assert first == "pm2026a"
    taken = {"pm2026a", "pm2026a-ed"}
    assert rules.next_selector(prefix="pm", year=2026, algorithm="rsa", taken=taken) == "pm2026b"
    assert (
        rules.next_selector(prefix="pm", year=2026, algorithm="ed25519", taken=taken)
        == "pm2026b-ed"
    )
    # An Ed25519 selector alone blocks its letter for RSA too.
    assert (
        rules.next_selector(prefix="pm", year=2026, algorithm="rsa", taken={"pm2026a-ed"})
        == "pm2026b"
    )
    many = {f"pm2026{chr(c)}" for c in range(ord("a"), ord("z") + 1)}
    assert rules.next_selector(prefix="pm", year=2026, algorithm="rsa", taken=many) == "pm2026aa"


def test_the_published_record_names_the_selector_under_domainkey() -> None:
    record = rules.published_key(
        selector="pm2026a", domain="xn--mller-kva.example", algorithm="rsa", public="QUJD"
    )
    assert record == rules.PublishedKey(
        selector="pm2026a",
        name="pm2026a._domainkey.xn--mller-kva.example",
        value="v=DKIM1; k=rsa; p=QUJD",
    )


def test_generated_keys_match_their_published_public_keys() -> None:
    pair = rules.generate("rsa", rsa_bits=2048)
    private = load_pem_private_key(pair.private_pem.encode(), password=None)
    assert isinstance(private, rsa.RSAPrivateKey) and private.key_size == 2048
    public = load_der_public_key(base64.b64decode(pair.public))
    assert public.public_numbers() == private.public_key().public_numbers()  # type: ignore[union-attr]
    pair = rules.generate("ed25519")
    private_ed = load_pem_private_key(pair.private_pem.encode(), password=None)
    assert isinstance(private_ed, ed25519.Ed25519PrivateKey)
    assert base64.b64decode(pair.public) == private_ed.public_key().public_bytes_raw()


def test_a_retired_key_is_published_until_its_overlap_ends() -> None:
    now = dt.datetime(2030, 1, 10, tzinfo=dt.UTC)
    assert rules.state(retired_at=None, published_until=None, now=now) == "active"
    retired = dt.datetime(2030, 1, 9, tzinfo=dt.UTC)
    until = dt.datetime(2030, 1, 16, tzinfo=dt.UTC)
    assert rules.state(retired_at=retired, published_until=until, now=now) == "overlap"
    assert rules.state(retired_at=retired, published_until=until, now=until) == "expired"
