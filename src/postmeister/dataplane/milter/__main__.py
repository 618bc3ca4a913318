"""Run the Postmeister milters: `python -m postmeister.dataplane.milter --config milter.json`.

The configuration (rendered by `postmeister.dataplane.render.milter`) names the sender
milter's listen address, the database, and optionally the antispam milter's listen address
and rspamd, and the metrics listener (`postmeister.dataplane.milter.metrics`). Each milter
is a threaded TCP server; SIGTERM or SIGINT stops them all.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from postmeister.dataplane.milter import metrics
from postmeister.dataplane.milter.antispam import AntispamMilter, RspamdScanner
from postmeister.dataplane.milter.limits import SendingLimiter
from postmeister.dataplane.milter.lookups import ContractLookups, database_from_config
from postmeister.dataplane.milter.protocol import MilterServer, parse_endpoint
from postmeister.dataplane.milter.sender import SenderMilter

# Asked by `/status`: an address no installation hosts, so the answer is always "none".
STATUS_PROBE = "postmeister-status@status.invalid"


def servers_from_config(config: dict[str, Any]) -> list[MilterServer]:
    """The sender milter server, and the antispam one when the configuration has it."""
    lookups = ContractLookups(database_from_config(config["database"]))
    limiter = SendingLimiter(lookups)
    servers = [
        MilterServer(parse_endpoint(str(config["listen"])), lambda: SenderMilter(lookups, limiter))
    ]
    metrics.declare("sender", metrics.SENDER_RESULTS)
    antispam = config.get("antispam")
    if antispam is not None:
        metrics.declare("antispam", metrics.ANTISPAM_RESULTS)
        scanner = RspamdScanner(*parse_endpoint(str(antispam["rspamd"])))
        servers.append(
            MilterServer(
                parse_endpoint(str(antispam["listen"])),
                lambda: AntispamMilter(lookups, scanner, seals=lookups),
            )
        )
    return servers


def _contract_check(lookups: ContractLookups) -> Callable[[], None]:
    """Both milters' questions, each once: raises when a contract view cannot be read."""

    def check() -> None:
        lookups.policy_of(STATUS_PROBE)
        lookups.may_send_as(STATUS_PROBE, STATUS_PROBE)

    return check


def run(
    config_file: Path, *, pid_file: Path | None = None, ready: Callable[[], None] | None = None
) -> None:
    """Serve until SIGTERM/SIGINT with the listen addresses and database of `config_file`."""
    config = json.loads(config_file.read_text())
    servers = servers_from_config(config)
    exporter = None
    if config.get("metrics"):
        lookups = ContractLookups(database_from_config(config["database"]))
        exporter = metrics.start(parse_endpoint(str(config["metrics"])), _contract_check(lookups))

    def stop(_signum: int, _frame: object) -> None:
        for server in servers:
            threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    threads = [
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2})
        for server in servers
    ]
    for thread in threads:
        thread.start()
    if pid_file is not None:
        pid_file.write_text(f"{os.getpid()}\n")
    if ready is not None:
        ready()
    try:
        for thread in threads:
            while thread.is_alive():  # a timed join lets the signal handlers run
                thread.join(0.5)
    finally:
        for server in servers:
            server.server_close()
        if exporter is not None:
            exporter.shutdown()
            exporter.server_close()
        if pid_file is not None:
            pid_file.unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m postmeister.dataplane.milter", description="Run the Postmeister milters."
    )
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--pid-file", type=Path)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    run(args.config, pid_file=args.pid_file)


if __name__ == "__main__":
    main()
