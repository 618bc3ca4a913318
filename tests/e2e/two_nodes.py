"""Two mail nodes sharing one PostgreSQL database: the topology of tests/e2e/test_placement.py,
also used by the cluster benchmark (bench/cluster.py).

Two network namespaces, each the INSTALLED data plane (tests/e2e/installed.py: Postfix,
Dovecot, rspamd and the milters on the standard ports) rendered for its own node name
(`POSTMEISTER_DATAPLANE__NODE_NAME`), joined by a veth pair of their own
(`netns.connect`), both reading ONE PostgreSQL database, a scratch database (through the
relay each namespace has to the host's server).
"""

from __future__ import annotations

import contextlib
import functools
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e import installed
from tests.e2e.conftest import scratch_database
from tests.e2e.installed import InstalledPlane
from tests.support import netns
from tests.support.factories import make_token

NAMES = ("node1", "node2")
JSONAPI = "application/vnd.api+json"


@dataclass
class Cluster:
    nodes: dict[str, InstalledPlane]
    admin: dict[str, str]  # the operator's API headers
    database_url: str  # the shared scratch database, as the host reaches it

    @property
    def first(self) -> InstalledPlane:
        return self.nodes["node1"]

    def api(self, method: str, path: str, document: Any = None, *, as_admin: bool = True) -> Any:
        """A request to the controller (node 1's test app; every node shares the database)."""
        stack = self.first.stack
        auth = self.admin if as_admin else stack.tenant.auth
        headers = {**auth, "Content-Type": JSONAPI, "Accept": JSONAPI}
        return stack.api.request(method, path, json=document, headers=headers)


def _start(node: str, url: str, root: Path, subnet: int, address: str, peer: str) -> Any:
    """Node `node`'s installed plane: `installed.start` with this node's settings in the
    environment `dataplane install` reads, in the namespace subnet chosen for it (its
    address is in those settings, so it has to be known before the namespace exists)."""
    plane = installed.start(node, url, root)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("POSTMEISTER_DATAPLANE__NODE_NAME", node)
        patch.setenv("POSTMEISTER_DATAPLANE__NODE_ADDRESS", address)
        patch.setenv("POSTMEISTER_DATAPLANE__NODE_NETWORKS", json.dumps([f"{peer}/32"]))
        patch.setattr(netns, "create", functools.partial(netns.create, subnet=subnet))
        started = next(plane)
    return plane, started


@contextlib.contextmanager
def two_mail_nodes() -> Iterator[Cluster]:
    """Both nodes running and linked, sharing one scratch PostgreSQL database; removed
    (daemons, namespaces, the link, the roots) when the block ends."""
    roots = {node: installed.fresh_root(node) for node in NAMES}
    running: list[Any] = []
    try:
        with scratch_database("postgresql", roots["node1"], prefix="pm_place") as url:
            subnets = dict(zip(NAMES, netns.free_subnets(len(NAMES)), strict=True))
            addresses = {node: f"10.231.{subnet}.2" for node, subnet in subnets.items()}
            planes: dict[str, InstalledPlane] = {}
            try:
                for node, peer in zip(NAMES, reversed(NAMES), strict=True):
                    generator, plane = _start(
                        node, url, roots[node], subnets[node], addresses[node], addresses[peer]
                    )
                    running.append(generator)
                    assert plane.host == addresses[node]
                    planes[node] = plane
                link = netns.connect(planes["node1"].namespace, planes["node2"].namespace)
                try:
                    admin = {
                        "Authorization": f"Bearer {make_token(planes['node1'].stack.sessions, admin=True)}"
                    }
                    yield Cluster(planes, admin, url)
                finally:
                    netns.disconnect(link)
            finally:
                # Each generator's own `finally` stops its daemons and removes its namespace.
                for generator in reversed(running):
                    generator.close()
    finally:
        for node, root in roots.items():
            installed.keep_logs(root, node)
            shutil.rmtree(root, ignore_errors=True)


def register_nodes(cluster: Cluster) -> None:
    """Both nodes registered through the admin API, LMTP on port 24 of each."""
    for node in NAMES:
        document = {
            "data": {
                "type": "mail-node",
                "attributes": {"name": node, "address": cluster.nodes[node].host, "lmtp_port": 24},
            }
        }
        answer = cluster.api("POST", "/mail-nodes", document)
        assert answer.status_code == 201, answer.text
