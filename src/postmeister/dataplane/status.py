"""`postmeister dataplane status`: does each daemon answer, and can it read the contract?

Per daemon, two facts:
- `answers`: it speaks its protocol on its ports (SMTP banners on smtp and submission, IMAP
  and POP3 greetings, and the same greetings inside TLS on the implicit-TLS ports imaps,
  pop3s and submissions; rspamd's `/ping`, an HTTP answer from the auth policy service, the
  milters' TCP ports);
- `reads_contract`: a lookup through the daemon itself reaches the contract views —
  Postfix: `postmap -q` on its `virtual_mailbox_domains` map; Dovecot: `doveadm user` (its
  userdb); the milters: their `/status` (`postmeister.dataplane.milter.metrics`). A probe
  for an address no installation hosts is enough: "not found" proves the view was read,
  a database error does not. `null` for daemons that do not read the database (rspamd,
  the auth policy service).

Targets: a private stack (`--dir`, ports from its `stack.json`) or the installed system
(standard ports and the configured listen addresses). All output is data; the caller
decides the exit code (`ok`).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import re
import shutil
import socket
import ssl
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

from postmeister.config import Settings
from postmeister.dataplane.render.model import Endpoint, StackLayout

TIMEOUT: Final = 5.0
PROBE_DOMAIN: Final = "status.invalid"
PROBE_ADDRESS: Final = "postmeister-status@status.invalid"
# doveadm's exit codes (sysexits): the user does not exist / a temporary failure.
_EX_NOUSER: Final = 67


@dataclass(frozen=True)
class Targets:
    smtp: Endpoint
    imap: Endpoint
    pop3: Endpoint
    milter: Endpoint
    antispam: Endpoint
    milter_metrics: Endpoint
    rspamd: Endpoint
    authpolicy: Endpoint
    postfix_config: Path | None  # None: Postfix's default (/etc/postfix)
    dovecot_config: Path | None  # None: Dovecot's default
    # The submission services and the implicit-TLS listeners (None: not checked, e.g. the
    # stack.json of a stack started before they existed).
    submission: Endpoint | None = None
    submissions: Endpoint | None = None
    imaps: Endpoint | None = None
    pop3s: Endpoint | None = None
    # The OpenDKIM signers, by algorithm (empty: none configured, not reported).
    opendkim: tuple[Endpoint, ...] = ()
    # postsrsd's forward and reverse tables (empty: SRS off, not reported).
    postsrsd: tuple[Endpoint, ...] = ()


@dataclass(frozen=True)
class DaemonStatus:
    answers: bool
    reads_contract: bool | None
    detail: str

    @property
    def ok(self) -> bool:
        return self.answers and self.reads_contract is not False


def stack_targets(root: Path) -> Targets:
    layout = StackLayout(root.resolve())
    try:
        ports: dict[str, Any] = json.loads(layout.state_file.read_text())
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"no running stack in {root} (no {layout.state_file})") from exc
    host = str(ports.get("host", "127.0.0.1"))

    def at(name: str) -> Endpoint:
        return Endpoint(host, int(ports[name]))

    def optional(name: str) -> Endpoint | None:
        return at(name) if name in ports else None

    return Targets(
        smtp=at("smtp"),
        imap=at("imap"),
        pop3=at("pop3"),
        milter=at("milter"),
        antispam=at("antispam"),
        milter_metrics=at("milter_metrics"),
        rspamd=at("rspamd"),
        authpolicy=at("authpolicy"),
        postfix_config=layout.postfix_config,
        dovecot_config=layout.dovecot_config,
        submission=optional("submission"),
        submissions=optional("submissions"),
        imaps=optional("imaps"),
        pop3s=optional("pop3s"),
        opendkim=tuple(at(name) for name in sorted(ports) if name.startswith("dkim_")),
        postsrsd=tuple(at(name) for name in ("srs_forward", "srs_reverse") if name in ports),
    )


def system_targets(settings: Settings) -> Targets:
    dp = settings.dataplane
    return Targets(
        smtp=Endpoint("127.0.0.1", 25),
        imap=Endpoint("127.0.0.1", 143),
        pop3=Endpoint("127.0.0.1", 110),
        milter=Endpoint.parse(dp.milter_address),
        antispam=Endpoint.parse(dp.antispam_milter_address),
        milter_metrics=Endpoint.parse(dp.milter_metrics_address),
        rspamd=Endpoint.parse(dp.rspamd_address),
        authpolicy=Endpoint.parse(dp.auth_policy_address),
        postfix_config=None,
        dovecot_config=None,
        submission=Endpoint("127.0.0.1", 587),
        submissions=Endpoint("127.0.0.1", 465),
        imaps=Endpoint("127.0.0.1", 993),
        pop3s=Endpoint("127.0.0.1", 995),
        opendkim=tuple(
            Endpoint.parse(
                dp.dkim_milter_address if algorithm == "rsa" else dp.dkim_ed25519_milter_address
            )
            for algorithm in settings.dkim.algorithms
        ),
        postsrsd=(
            (
                Endpoint(settings.srs.listen_host, settings.srs.forward_port),
                Endpoint(settings.srs.listen_host, settings.srs.reverse_port),
            )
            if settings.srs.enabled
            else ()
        ),
    )


def status(targets: Targets) -> dict[str, Any]:
    daemons = {
        "postfix": _postfix(targets),
        "dovecot": _dovecot(targets),
        "milter": _milter(targets),
        "rspamd": _rspamd(targets.rspamd),
        "authpolicy": _authpolicy(targets.authpolicy),
    }
    if targets.opendkim:
        daemons["opendkim"] = _opendkim(targets.opendkim)
    if targets.postsrsd:
        daemons["postsrsd"] = _postsrsd(targets.postsrsd)
    return {
        "ok": all(d.ok for d in daemons.values()),
        "daemons": {name: asdict(d) for name, d in daemons.items()},
    }


# Whether a listener answers, not whether its certificate is trusted (a fresh install may
# have a self-signed one): no verification.
_ANY_CERTIFICATE = ssl.create_default_context()
_ANY_CERTIFICATE.check_hostname = False
_ANY_CERTIFICATE.verify_mode = ssl.CERT_NONE


def _greeting(endpoint: Endpoint, expected: bytes, *, implicit_tls: bool = False) -> str | None:
    """None when the server's first line (inside TLS with `implicit_tls`) starts with
    `expected`, else what went wrong."""
    try:
        with socket.create_connection((endpoint.host, endpoint.port), timeout=TIMEOUT) as sock:
            if implicit_tls:
                with _ANY_CERTIFICATE.wrap_socket(sock) as tls:
                    line = tls.makefile("rb").readline(512)
            else:
                line = sock.makefile("rb").readline(512)
    except OSError as exc:  # ssl.SSLError is one
        return f"{endpoint}: {exc.strerror or exc}"
    if not line.startswith(expected):
        return f"{endpoint} answered {line[:60]!r}"
    return None


def _connects(endpoint: Endpoint) -> str | None:
    try:
        with socket.create_connection((endpoint.host, endpoint.port), timeout=TIMEOUT):
            return None
    except OSError as exc:
        return f"{endpoint}: {exc.strerror or exc}"


def _run(command: list[str]) -> subprocess.CompletedProcess[str] | str:
    if shutil.which(command[0]) is None:
        return f"{command[0]} is not installed"
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    except subprocess.TimeoutExpired:
        return f"{command[0]} did not answer within 30 s"


def _greetings(checks: list[tuple[Endpoint | None, bytes, bool]]) -> str | None:
    """What went wrong on any of the listeners (None: all answered)."""
    problems = [
        problem
        for endpoint, expected, implicit_tls in checks
        if endpoint is not None
        and (problem := _greeting(endpoint, expected, implicit_tls=implicit_tls))
    ]
    return "; ".join(problems) or None


def _postfix(targets: Targets) -> DaemonStatus:
    problem = _greetings(
        [
            (targets.smtp, b"220", False),
            (targets.submission, b"220", False),
            (targets.submissions, b"220", True),
        ]
    )
    config = ["-c", str(targets.postfix_config)] if targets.postfix_config else []
    found = _run(["postconf", *config, "-h", "virtual_mailbox_domains"])
    if isinstance(found, str):
        return DaemonStatus(problem is None, False, found)
    table = found.stdout.strip().split(",")[0].split()[0] if found.stdout.strip() else ""
    if found.returncode != 0 or ":" not in table:
        return DaemonStatus(problem is None, False, "virtual_mailbox_domains is not a lookup table")
    lookup = _run(["postmap", *config, "-q", PROBE_DOMAIN, table])
    if isinstance(lookup, str):
        return DaemonStatus(problem is None, False, lookup)
    # Exit 1 without a message: not found, the table answered. Anything on stderr: it did not.
    reads = lookup.returncode in (0, 1) and not lookup.stderr.strip()
    detail = problem or ("" if reads else lookup.stderr.strip().splitlines()[-1])
    return DaemonStatus(problem is None, reads, detail or f"answers; {table} readable")


def _dovecot(targets: Targets) -> DaemonStatus:
    problem = _greetings(
        [
            (targets.imap, b"* OK", False),
            (targets.imaps, b"* OK", True),
            (targets.pop3, b"+OK", False),
            (targets.pop3s, b"+OK", True),
        ]
    )
    config = ["-c", str(targets.dovecot_config)] if targets.dovecot_config else []
    lookup = _run(["doveadm", *config, "user", PROBE_ADDRESS])
    if isinstance(lookup, str):
        return DaemonStatus(problem is None, False, lookup)
    reads = lookup.returncode in (0, _EX_NOUSER)
    output = (lookup.stderr or lookup.stdout).strip()
    detail = problem or ("" if reads else (output.splitlines() or ["doveadm user failed"])[-1])
    return DaemonStatus(problem is None, reads, detail or "answers; userdb readable")


def _http_get(endpoint: Endpoint, path: str) -> tuple[int, bytes] | str:
    connection = http.client.HTTPConnection(endpoint.host, endpoint.port, timeout=TIMEOUT)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()
    except (OSError, http.client.HTTPException) as exc:
        return f"{endpoint}: {exc}"
    finally:
        connection.close()


def _milter(targets: Targets) -> DaemonStatus:
    problems = [p for p in (_connects(targets.milter), _connects(targets.antispam)) if p]
    answer = _http_get(targets.milter_metrics, "/status")
    if isinstance(answer, str):
        return DaemonStatus(not problems, False, "; ".join([*problems, answer]))
    code, body = answer
    reads = code == 200
    detail = "; ".join(problems) or ("answers; contract readable" if reads else "")
    if not reads:
        with contextlib.suppress(ValueError, AttributeError):
            detail = str(json.loads(body).get("error")) or detail
    return DaemonStatus(not problems, reads, detail or f"/status answered {code}")


def _opendkim(endpoints: tuple[Endpoint, ...]) -> DaemonStatus:
    # OpenDKIM has no status query: a missing key table shows only when it signs (4xx).
    problems = [p for p in (_connects(e) for e in endpoints) if p]
    return DaemonStatus(not problems, None, "; ".join(problems) or "answers")


def _postsrsd(endpoints: tuple[Endpoint, ...]) -> DaemonStatus:
    """One lookup on each table (Postfix's tcp_table protocol): any reply code means the
    table answers; the forward table must rewrite an outside address."""
    problems = []
    for endpoint in endpoints:
        try:
            with socket.create_connection((endpoint.host, endpoint.port), timeout=TIMEOUT) as s:
                s.sendall(b"get postmaster@status-check.invalid\n")
                reply = s.recv(512).decode(errors="replace").strip()
        except OSError as exc:
            problems.append(f"{endpoint}: {exc.strerror or exc}")
            continue
        if not re.match(r"[2-5]\d\d ", reply):
            problems.append(f"{endpoint}: not a lookup table reply: {reply[:80]!r}")
        elif endpoint == endpoints[0] and not reply.startswith("200 SRS0="):
            problems.append(f"{endpoint}: does not rewrite: {reply[:80]!r}")
    return DaemonStatus(not problems, None, "; ".join(problems) or "answers")


def _rspamd(endpoint: Endpoint) -> DaemonStatus:
    answer = _http_get(endpoint, "/ping")
    if isinstance(answer, str):
        return DaemonStatus(False, None, answer)
    ok = answer[0] == 200 and answer[1].strip() == b"pong"
    return DaemonStatus(ok, None, "answers" if ok else f"/ping answered {answer[0]}")


def _authpolicy(endpoint: Endpoint) -> DaemonStatus:
    answer = _http_get(endpoint, "/")
    if isinstance(answer, str):
        return DaemonStatus(False, None, answer)
    return DaemonStatus(True, None, "answers")
