"""The placement rule, pure: which mail node a new mailbox is homed on.

Least used by default: the active node with the fewest mailboxes, ties broken by name so
that the choice is the same on every controller. A batch (a sync creating thousands of
mailboxes) is spread the same way, one mailbox at a time, counting the ones just placed.
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal

from postmeister.errors import FieldProblem

NodeState = Literal["active", "draining"]
STATES: Final = ("active", "draining")
# A node name is one DNS label: it appears in the rendered configuration and in logs.
NODE_NAME: Final = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
MAX_ADDRESS: Final = 255


@dataclass(frozen=True)
class NodeLoad:
    """An active node and the number of mailboxes homed on it."""

    node_id: int
    name: str
    mailboxes: int


def least_used(nodes: Sequence[NodeLoad], count: int) -> list[int | None]:
    """The home node id of each of `count` new mailboxes, in order; None for each when no
    node takes mailboxes (a single-node installation: the mailbox stays unplaced)."""
    if not nodes:
        return [None] * count
    heap = [(node.mailboxes, node.name, node.node_id) for node in nodes]
    heapq.heapify(heap)
    homes: list[int | None] = []
    for _ in range(count):
        mailboxes, name, node_id = heapq.heappop(heap)
        homes.append(node_id)
        heapq.heappush(heap, (mailboxes + 1, name, node_id))
    return homes


def node_problems(*, name: str, address: str, lmtp_port: int, state: str) -> list[FieldProblem]:
    problems: list[FieldProblem] = []
    if not NODE_NAME.fullmatch(name):
        problems.append(
            FieldProblem("name", "a node name is one DNS label: a-z, 0-9 and '-'", "format")
        )
    if not address or len(address) > MAX_ADDRESS or any(c.isspace() for c in address):
        problems.append(
            FieldProblem("address", "the host or IP address the other nodes reach", "format")
        )
    if not 1 <= lmtp_port <= 65535:
        problems.append(FieldProblem("lmtp_port", "a TCP port, 1 to 65535", "range"))
    problems.extend(state_problems(state))
    return problems


def state_problems(state: str) -> list[FieldProblem]:
    if state in STATES:
        return []
    return [FieldProblem("state", f"one of {', '.join(STATES)}", "enum")]
