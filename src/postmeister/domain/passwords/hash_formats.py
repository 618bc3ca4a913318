"""Which crypt format a stored password hash is in, and whether the data plane can verify it.

Hashes arrive ready-made (the Basic JSON sync imports them as they are), so nothing checks
them by logging in: a hash that is malformed would be stored, and its user could never log
in again, with no error anywhere. This module therefore validates each supported format down
to the rules that the verifiers apply (libxcrypt behind Dovecot's `{CRYPT}`, libsodium behind
`{ARGON2ID}`):

- a verifier recomputes the hash from the stored *setting* (prefix, cost, salt) and compares
  the whole string, so anything it would normalise on the way (an over-long salt, `rounds=`
  with a leading zero, unused low bits in the last character of a base64 field) makes the
  comparison fail for every password: such strings are rejected here;
- a setting the verifier refuses (rounds out of range, bcrypt cost out of range, a salt of a
  length that does not decode) is rejected as well;
- a setting that costs too much to verify is rejected too (the login-cost caps below), because
  Dovecot verifies every login of every customer in its shared auth processes.

Migration sources (PostfixAdmin, mailcow) store hashes behind Dovecot's `{SCHEME}` prefix.
`normalise_crypt_hash` accepts the prefixes whose hash Dovecot verifies as it is, checks that
the prefix names the hash inside it, and returns the bare hash: the one form that is stored.

Messages never repeat the rejected value: it may be a plain-text password typed by mistake,
and even a real hash is a secret worth not copying into logs.
"""

from __future__ import annotations

import binascii
import re
from typing import Final, Literal

from postmeister.errors import InvalidInput

CryptScheme = Literal["md5-crypt", "sha256-crypt", "sha512-crypt", "bcrypt", "argon2id", "yescrypt"]

# The length of `addresses.password_hash`; a longer string could not be stored whole.
MAX_HASH_LENGTH: Final = 512

# The alphabet of crypt(3) fields, in value order (`.` is 0, `z` is 63).
_CRYPT64: Final = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
# bcrypt uses the same characters in a different order.
_BCRYPT64: Final = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_STANDARD_B64: Final = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
_CRYPT64_VALUE: Final = {char: value for value, char in enumerate(_CRYPT64)}
_BCRYPT64_VALUE: Final = {char: value for value, char in enumerate(_BCRYPT64)}
# The characters of both alphabets (the same set); a regular expression tests a whole field
# at C speed, far quicker than building a set of its characters for each hash.
_CRYPT64_FIELD: Final = re.compile(r"[./0-9A-Za-z]*")

_SHA_ROUNDS_MIN: Final = 1000
_SHA_ROUNDS_MAX: Final = 999_999_999
_SHA_SALT_MAX: Final = 16
_MD5_SALT_MAX: Final = 8
_HASH_CHARS: Final = {"md5-crypt": 22, "sha256-crypt": 43, "sha512-crypt": 86, "yescrypt": 43}
_BCRYPT_COST_MIN: Final = 4
_BCRYPT_COST_MAX: Final = 31
_BCRYPT_SALT_CHARS: Final = 22
_BCRYPT_HASH_CHARS: Final = 31
_ARGON2_VERSION: Final = "v=19"
_ARGON2_MIN_SALT_BYTES: Final = 8
_ARGON2_MIN_HASH_BYTES: Final = 16
_UINT32_MAX: Final = 2**32 - 1
_ARGON2_MAX_LANES: Final = 2**24 - 1
# yescrypt's first parameter character selects its flavour; libxcrypt knows these three
# (classic scrypt, scrypt with the yescrypt "worm" tweak, and yescrypt proper).
_YESCRYPT_FLAVOURS: Final = frozenset("./j")
# Login-cost caps, tighter than the formats allow: Dovecot verifies every login in its shared
# auth processes (up to 30 workers by default, each holding a hash's memory while it runs), so
# one customer's absurdly expensive hash (bcrypt cost 31 takes days, yescrypt jJT wants 16 GiB)
# would slow or stall logins for everyone. Each cap keeps one verification at about 0.45 s or
# less on a 2-core machine (measured with libxcrypt and libsodium, the libraries behind
# Dovecot's {CRYPT} and {ARGON2ID}; the README lists the figures) while accepting the defaults
# of the common generators (doveadm, mkpasswd, openssl, PHP, argon2-cffi, bcrypt libraries).
# md5-crypt has a fixed, tiny cost and needs no cap.
_SHA_ROUNDS_CAP: Final = 700_000  # default 5000; passlib's 535000/656000 fit (migrations)
_BCRYPT_COST_CAP: Final = 12
_YESCRYPT_MEMORY_CAP: Final = 64 * 2**20  # bytes, 128·N·r: jBT; the default j9T is 16 MiB
_ARGON2_MEMORY_CAP_KIB: Final = 65_536  # 64 MiB, the usual default
_ARGON2_WORK_CAP: Final = 65_536 * 8  # m × t in KiB passes: 64 MiB with t up to 8
_ARGON2_LANES_CAP: Final = 16

_SUPPORTED = "$1$, $5$, $6$, $2a$/$2b$/$2y$, $argon2id$ or $y$"
_HASH_IT_HINT = "hash it first, e.g. with `mkpasswd -m yescrypt` or `doveadm pw -s SHA512-CRYPT`"
# Prefixes of real formats we do not import, with the reason a customer can act on.
_UNSUPPORTED: Final = {
    "2": "the original $2$ bcrypt variant is obsolete; use $2b$",
    "2x": "$2x$ marks hashes made by a bcrypt implementation with a known bug; use $2b$",
    "argon2i": "only the argon2id variant of Argon2 is supported",
    "argon2d": "only the argon2id variant of Argon2 is supported",
    "7": "scrypt ($7$) hashes are not supported; yescrypt ($y$) is",
    "gy": "GOST yescrypt ($gy$) hashes are not supported; yescrypt ($y$) is",
    "sha1": "SHA-1 crypt ($sha1$) hashes are not supported",
    "md5": "Sun MD5 crypt ($md5$) hashes are not supported",
    "3": "NT hashes ($3$) are not supported",
}


# Dovecot's `{SCHEME}` prefixes that Postmeister imports, and the hashes each may hold. These
# are the schemes whose stored string is the crypt hash itself, so the bare hash is verified by
# the data plane exactly as the source verified the prefixed one (the contract view derives
# the scheme again from the hash). `{CRYPT}` is crypt(3), i.e. libxcrypt: every crypt format
# except argon2id, which libxcrypt does not know and Dovecot verifies only as `{ARGON2ID}`.
_PREFIXES: Final[dict[str, frozenset[CryptScheme]]] = {
    "CRYPT": frozenset(("md5-crypt", "sha256-crypt", "sha512-crypt", "bcrypt", "yescrypt")),
    "MD5-CRYPT": frozenset(("md5-crypt",)),
    "SHA256-CRYPT": frozenset(("sha256-crypt",)),
    "SHA512-CRYPT": frozenset(("sha512-crypt",)),
    "BLF-CRYPT": frozenset(("bcrypt",)),
    "ARGON2ID": frozenset(("argon2id",)),
}
_PREFIXES_TEXT: Final = ", ".join("{" + name + "}" for name in _PREFIXES)
# Dovecot's other schemes (`doveadm pw -l`): named in the refusal, because the name is not
# secret. Anything else between the braces is not repeated: it may be part of a password.
_OTHER_DOVECOT_SCHEMES: Final = frozenset(
    (
        *("PLAIN", "CLEAR", "CLEARTEXT", "PLAIN-TRUNC", "PLAIN-MD4", "PLAIN-MD5", "LDAP-MD5"),
        *("MD5", "SMD5", "SHA", "SHA1", "SHA256", "SHA512", "SSHA", "SSHA256", "SSHA512"),
        *("HMAC-MD5", "CRAM-MD5", "DIGEST-MD5", "SCRAM-SHA-1", "SCRAM-SHA-256", "OTP"),
        *("PBKDF2", "DES-CRYPT", "ARGON2I"),
    )
)
_CLEAR_TEXT_SCHEMES: Final = frozenset(("PLAIN", "CLEAR", "CLEARTEXT", "PLAIN-TRUNC"))
# Longer than any scheme name; bounds the search for the closing brace.
_PREFIX_MAX: Final = 32


def normalise_crypt_hash(value: str, *, field: str = "password") -> str:
    """Return the bare crypt hash to store for an imported `value`, or raise `InvalidInput`.

    `value` is either a bare hash that `identify_crypt_hash` accepts, or such a hash behind a
    Dovecot scheme prefix as migration sources store them (PostfixAdmin, mailcow):
    `{CRYPT}` with any crypt(3) format, or `{MD5-CRYPT}` `$1$`, `{SHA256-CRYPT}` `$5$`,
    `{SHA512-CRYPT}` `$6$`, `{BLF-CRYPT}` bcrypt, `{ARGON2ID}` `$argon2id$`. The prefix is
    matched case-insensitively, as Dovecot does, and must name the hash inside it. What is
    stored is always the bare hash, so a prefixed and a bare document mean the same thing
    and export writes the bare form.
    """
    if not value.startswith("{"):
        identify_crypt_hash(value, field=field)
        return value
    close = value.find("}", 0, _PREFIX_MAX)
    if close < 0:
        raise InvalidInput.single(
            field,
            "starts with { but no Dovecot scheme prefix such as {SHA512-CRYPT} closes",
            rule="password-hash",
        )
    # Dovecot compares scheme names ignoring ASCII case only (str.upper would also map,
    # say, a long s to S).
    raw_name, bare = value[1:close], value[close + 1 :]
    name = raw_name.upper() if raw_name.isascii() else ""
    schemes = _PREFIXES.get(name)
    if schemes is None:
        raise InvalidInput.single(field, _unknown_prefix(name), rule="password-hash")
    if bare.startswith("{"):
        raise InvalidInput.single(
            field, "has two Dovecot scheme prefixes; give one", rule="password-hash"
        )
    scheme = identify_crypt_hash(bare, field=field)
    if scheme not in schemes:
        raise InvalidInput.single(
            field,
            f"the prefix {{{name}}} does not match the {scheme} hash inside it; "
            f"{scheme} hashes take " + _prefixes_holding(scheme),
            rule="password-hash",
        )
    return bare


def _prefixes_holding(scheme: CryptScheme) -> str:
    """`{SHA512-CRYPT} or {CRYPT}`: the scheme's own prefix first, the general one last."""
    names = sorted((n for n, held in _PREFIXES.items() if scheme in held), key=len, reverse=True)
    return " or ".join("{" + n + "}" for n in names)


def _unknown_prefix(name: str) -> str:
    accepted = f"accepted are {_PREFIXES_TEXT} and bare crypt hashes"
    if name not in _OTHER_DOVECOT_SCHEMES:
        return f"has a scheme prefix that is not a Dovecot crypt scheme; {accepted}"
    message = f"the Dovecot scheme {{{name}}} is not accepted; {accepted}"
    if name in _CLEAR_TEXT_SCHEMES:
        message += f"; plain-text passwords are not accepted: {_HASH_IT_HINT}"
    return message


def identify_crypt_hash(value: str, *, field: str = "password") -> CryptScheme:
    """Return the scheme of a bare crypt-format password hash (the form that is stored), or
    raise `InvalidInput` on `field`. Imported values go through `normalise_crypt_hash`,
    which also accepts a Dovecot `{SCHEME}` prefix.

    Accepted: md5-crypt `$1$`, sha256-crypt `$5$` and sha512-crypt `$6$` (with or without
    `rounds=N`, N in 1000..700000), bcrypt `$2a$`/`$2b$`/`$2y$` (cost 04..12),
    argon2id `$argon2id$v=19$m=M,t=T,p=P$salt$hash` (M at most 65536 KiB, M × T at most
    524288, P at most 16) and yescrypt `$y$` (N and r only, 128·N·r at most 64 MiB). The
    message names the first rule the value breaks, precisely enough to fix the generator
    that made it.
    """
    problem = _problem(value)
    if isinstance(problem, _Problem):
        raise InvalidInput.single(field, problem.message, rule="password-hash")
    return problem


class _Problem:
    """Why a value is not acceptable (returned, not raised, to keep the checks flat)."""

    __slots__ = ("message",)

    def __init__(self, message: str) -> None:
        self.message = message


def _problem(value: str) -> CryptScheme | _Problem:
    if not value:
        return _Problem("a password hash is required")
    if len(value) > MAX_HASH_LENGTH:
        return _Problem(f"longer than {MAX_HASH_LENGTH} characters; no supported hash is")
    # For ASCII, isprintable() rules out every whitespace character except the space.
    if not value.isascii() or not value.isprintable() or " " in value:
        return _Problem("contains spaces, control or non-ASCII characters, which no crypt hash has")
    if value.startswith("{"):
        return _Problem(
            "starts with a Dovecot scheme prefix such as {SHA512-CRYPT}; "
            "store the bare hash that follows it (imports accept the prefix)"
        )
    if not value.startswith("$"):
        return _Problem(
            "is not a password hash in a supported format "
            f"({_SUPPORTED}); plain-text passwords are not accepted: {_HASH_IT_HINT}"
        )
    parts = value.split("$")
    ident = parts[1]
    if ident == "1":
        return _check_md5(parts)
    if ident in ("5", "6"):
        return _check_sha(parts)
    if ident in ("2a", "2b", "2y"):
        return _check_bcrypt(parts)
    if ident == "argon2id":
        return _check_argon2id(parts)
    if ident == "y":
        return _check_yescrypt(parts)
    if ident in _UNSUPPORTED:
        return _Problem(_UNSUPPORTED[ident])
    return _Problem(f"unknown hash prefix; supported are {_SUPPORTED}")


def _check_md5(parts: list[str]) -> CryptScheme | _Problem:
    scheme: CryptScheme = "md5-crypt"
    if len(parts) != 4:
        return _Problem(f"{scheme} has the form $1$salt$hash")
    return (
        _crypt64_field(parts[2], scheme, "salt", max_chars=_MD5_SALT_MAX)
        or _crypt64_hash(parts[3], scheme)
        or scheme
    )


def _check_sha(parts: list[str]) -> CryptScheme | _Problem:
    scheme: CryptScheme = "sha256-crypt" if parts[1] == "5" else "sha512-crypt"
    form = f"${parts[1]}$[rounds=N$]salt$hash"
    if len(parts) == 5:
        problem = _sha_rounds(parts[2], scheme)
        if problem:
            return problem
        salt, digest = parts[3], parts[4]
    elif len(parts) == 4:
        if parts[2].startswith("rounds="):
            return _Problem(f"{scheme} has the form {form}: the salt is missing after rounds=")
        salt, digest = parts[2], parts[3]
    else:
        return _Problem(f"{scheme} has the form {form}")
    return (
        _crypt64_field(salt, scheme, "salt", max_chars=_SHA_SALT_MAX)
        or _crypt64_hash(digest, scheme)
        or scheme
    )


def _sha_rounds(text: str, scheme: str) -> _Problem | None:
    digits = text.removeprefix("rounds=")
    if digits == text:
        return _Problem(f"{scheme}: expected rounds=N or the salt before the hash")
    if not digits.isdigit() or not digits.isascii():
        return _Problem(f"{scheme}: rounds must be a decimal number")
    if digits.startswith("0"):
        # libxcrypt refuses a leading zero rather than reading the number.
        return _Problem(f"{scheme}: rounds must not have leading zeros")
    if not _SHA_ROUNDS_MIN <= int(digits) <= _SHA_ROUNDS_MAX:
        return _Problem(f"{scheme}: rounds must be between {_SHA_ROUNDS_MIN} and {_SHA_ROUNDS_MAX}")
    if int(digits) > _SHA_ROUNDS_CAP:
        return _too_costly(scheme, f"rounds at most {_SHA_ROUNDS_CAP}")
    return None


def _check_bcrypt(parts: list[str]) -> CryptScheme | _Problem:
    scheme: CryptScheme = "bcrypt"
    if len(parts) != 4:
        return _Problem(f"{scheme} has the form ${parts[1]}$NN$ followed by 53 characters")
    cost, rest = parts[2], parts[3]
    if len(cost) != 2 or not cost.isdigit() or not cost.isascii():
        return _Problem(f"{scheme}: the cost must be two digits, e.g. 05 or 12")
    if not _BCRYPT_COST_MIN <= int(cost) <= _BCRYPT_COST_MAX:
        return _Problem(
            f"{scheme}: the cost must be between {_BCRYPT_COST_MIN:02d} and {_BCRYPT_COST_MAX}"
        )
    if int(cost) > _BCRYPT_COST_CAP:
        return _too_costly(scheme, f"cost at most {_BCRYPT_COST_CAP}")
    expected = _BCRYPT_SALT_CHARS + _BCRYPT_HASH_CHARS
    if len(rest) != expected:
        return _Problem(
            f"{scheme}: salt and hash must be {expected} characters together "
            f"({_BCRYPT_SALT_CHARS} + {_BCRYPT_HASH_CHARS}), found {len(rest)}"
        )
    for name, text in (
        ("salt", rest[:_BCRYPT_SALT_CHARS]),
        ("hash", rest[_BCRYPT_SALT_CHARS:]),
    ):
        bad = _first_outside(text, _BCRYPT64_VALUE)
        if bad is not None:
            return _Problem(
                f"{scheme}: the {name} has character {bad + 1} outside bcrypt's base64 "
                "alphabet [./A-Za-z0-9]"
            )
        # bcrypt encodes big-endian: the bits past the data sit low in the last character.
        unused_bits = 6 * len(text) - 8 * (len(text) * 6 // 8)
        if _BCRYPT64_VALUE[text[-1]] % (1 << unused_bits):
            return _Problem(f"{scheme}: the {name} has a last character that is not canonical")
    return scheme


def _check_argon2id(parts: list[str]) -> CryptScheme | _Problem:
    scheme: CryptScheme = "argon2id"
    form = "$argon2id$v=19$m=M,t=T,p=P$salt$hash"
    if len(parts) != 6:
        return _Problem(f"{scheme} has the form {form}")
    version, params, salt, digest = parts[2:]
    if version != _ARGON2_VERSION:
        return _Problem(f"{scheme}: only version 19 is supported ({form})")
    values = _argon2_params(params)
    if isinstance(values, _Problem):
        return values
    memory, time_cost, lanes = values
    if not 1 <= lanes <= _ARGON2_MAX_LANES:
        return _Problem(f"{scheme}: p (lanes) must be between 1 and {_ARGON2_MAX_LANES}")
    if not 1 <= time_cost <= _UINT32_MAX:
        return _Problem(f"{scheme}: t (iterations) must be between 1 and {_UINT32_MAX}")
    if not 8 * lanes <= memory <= _UINT32_MAX:
        return _Problem(
            f"{scheme}: m (memory in KiB) must be at least 8 per lane and at most {_UINT32_MAX}"
        )
    if memory > _ARGON2_MEMORY_CAP_KIB:
        return _too_costly(scheme, f"m at most {_ARGON2_MEMORY_CAP_KIB} KiB")
    if memory * time_cost > _ARGON2_WORK_CAP:
        return _too_costly(
            scheme,
            f"m × t at most {_ARGON2_WORK_CAP}, e.g. t at most "
            f"{_ARGON2_WORK_CAP // _ARGON2_MEMORY_CAP_KIB} with m={_ARGON2_MEMORY_CAP_KIB}",
        )
    if lanes > _ARGON2_LANES_CAP:
        return _too_costly(scheme, f"p at most {_ARGON2_LANES_CAP}")
    return (
        _b64_field(salt, scheme, "salt", min_bytes=_ARGON2_MIN_SALT_BYTES)
        or _b64_field(digest, scheme, "hash", min_bytes=_ARGON2_MIN_HASH_BYTES)
        or scheme
    )


def _too_costly(scheme: str, limit: str) -> _Problem:
    return _Problem(
        f"{scheme}: this hash costs more to verify than Postmeister accepts ({limit}); "
        "every login would tie up the shared authentication service"
    )


def _argon2_params(text: str) -> tuple[int, int, int] | _Problem:
    items = text.split(",")
    names = [item.partition("=")[0] for item in items]
    if names != ["m", "t", "p"]:
        return _Problem("argon2id: the parameters must be m=M,t=T,p=P in this order")
    numbers: list[int] = []
    for item in items:
        name, _, digits = item.partition("=")
        if not digits.isdigit() or not digits.isascii():
            return _Problem(f"argon2id: {name} must be a decimal number")
        if len(digits) > 1 and digits.startswith("0"):
            # libsodium refuses leading zeros, so such a hash never verifies.
            return _Problem(f"argon2id: {name} must not have leading zeros")
        numbers.append(int(digits))
    return numbers[0], numbers[1], numbers[2]


def _b64_field(text: str, scheme: str, name: str, *, min_bytes: int) -> _Problem | None:
    if "=" in text:
        return _Problem(f"{scheme}: the {name} must be base64 without = padding")
    bad = (
        None
        if set(text) <= _STANDARD_B64
        else next(i for i, char in enumerate(text) if char not in _STANDARD_B64)
    )
    if bad is not None:
        return _Problem(
            f"{scheme}: the {name} has character {bad + 1} outside the base64 alphabet "
            "[A-Za-z0-9+/]"
        )
    if len(text) % 4 == 1:
        return _Problem(f"{scheme}: the {name} has a length that no byte string encodes to")
    padded = text + "=" * (-len(text) % 4)
    raw = binascii.a2b_base64(padded, strict_mode=True)
    if binascii.b2a_base64(raw, newline=False).decode("ascii") != padded:
        return _Problem(f"{scheme}: the {name} has a last character that is not canonical")
    if len(raw) < min_bytes:
        return _Problem(f"{scheme}: the {name} must be at least {min_bytes} bytes")
    return None


def _check_yescrypt(parts: list[str]) -> CryptScheme | _Problem:
    scheme: CryptScheme = "yescrypt"
    if len(parts) != 5:
        return _Problem(f"{scheme} has the form $y$params$salt$hash")
    params, salt, digest = parts[2:]
    if len(params) < 3:
        return _Problem(f"{scheme}: the parameters need at least 3 characters (e.g. j9T)")
    bad = _first_outside(params, _CRYPT64_VALUE)
    if bad is not None:
        return _Problem(
            f"{scheme}: the parameters have character {bad + 1} outside the crypt alphabet "
            "[./0-9A-Za-z]"
        )
    if params[0] not in _YESCRYPT_FLAVOURS:
        return _Problem(f"{scheme}: unknown flavour in the parameters (usually j)")
    if _CRYPT64_VALUE[params[1]] == 0:
        return _Problem(f"{scheme}: the cost N in the parameters is zero")
    log2_n = _yescrypt_number(params, 1, minimum=1)
    if log2_n is None:
        return _Problem(f"{scheme}: the parameters end in the middle of the cost N")
    block = _yescrypt_number(params, log2_n[1], minimum=1)
    if block is None:
        return _Problem(f"{scheme}: the parameters end in the middle of the block size r")
    if block[1] != len(params):
        # p, t, g and a ROM each multiply the cost; no common generator writes them.
        return _too_costly(
            scheme,
            "only N and r; extra parameters after the block size r (p, t, g) are not accepted",
        )
    if (128 * block[0]) << log2_n[0] > _YESCRYPT_MEMORY_CAP:
        return _too_costly(
            scheme,
            f"memory 128·N·r at most {_YESCRYPT_MEMORY_CAP // 2**20} MiB, e.g. $y$jBT$; "
            "the default $y$j9T$ uses 16 MiB",
        )
    if len(salt) % 4 == 1:
        return _Problem(f"{scheme}: the salt has a length that no byte string encodes to")
    return _crypt64_field(salt, scheme, "salt") or _crypt64_hash(digest, scheme) or scheme


def _yescrypt_number(params: str, start: int, *, minimum: int) -> tuple[int, int] | None:
    """yescrypt's variable-length number at `params[start]`: (value, index after it), or
    None when the parameters end before it does.

    The first character's value says how long the number is: 0..47 stand alone; 48..55 start
    a number of two characters, 56..59 three, 60..61 four, 62 five and 63 six. Each longer
    form continues where the shorter ones end, and the value is offset by `minimum` (1 for
    log2 N and r).
    """
    if start >= len(params):
        return None
    first = _CRYPT64_VALUE[params[start]]
    low, high, length, shift = 0, 47, 1, 0
    value = minimum
    while first > high:
        value += (high + 1 - low) << shift
        low, high = high + 1, high + 1 + (62 - high) // 2
        length += 1
        shift += 6
    if start + length > len(params):
        return None
    value += (first - low) << shift
    for char in params[start + 1 : start + length]:
        shift -= 6
        value += _CRYPT64_VALUE[char] << shift
    return value, start + length


def _crypt64_hash(text: str, scheme: CryptScheme) -> _Problem | None:
    expected = _HASH_CHARS[scheme]
    if len(text) != expected:
        return _Problem(f"{scheme}: the hash must be {expected} characters, found {len(text)}")
    return _crypt64_field(text, scheme, "hash")


def _crypt64_field(
    text: str, scheme: str, name: str, *, max_chars: int | None = None
) -> _Problem | None:
    if max_chars is not None and len(text) > max_chars:
        # crypt() would cut the salt, so the recomputed string never equals this one.
        return _Problem(f"{scheme}: the {name} must be at most {max_chars} characters")
    bad = _first_outside(text, _CRYPT64_VALUE)
    if bad is not None:
        return _Problem(
            f"{scheme}: the {name} has character {bad + 1} outside the crypt alphabet [./0-9A-Za-z]"
        )
    # The crypt encodings (for the hash; for yescrypt's salt too) are little-endian: the
    # bits past the data sit high in the last character and must be zero. For md5 and
    # sha-crypt salts the characters are used as they are, so any last character is fine.
    if name == "hash" or scheme == "yescrypt":
        tail = len(text) % 4
        if tail and _CRYPT64_VALUE[text[-1]] >= 1 << (2 * (tail - 1)):
            return _Problem(f"{scheme}: the {name} has a last character that is not canonical")
    return None


def _first_outside(text: str, alphabet: dict[str, int]) -> int | None:
    if _CRYPT64_FIELD.fullmatch(text):  # the common case
        return None
    return next(i for i, char in enumerate(text) if char not in alphabet)
