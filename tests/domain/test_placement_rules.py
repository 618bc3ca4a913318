"""The placement rule: least used active node, ties by name, spread across a batch."""

from __future__ import annotations

from postmeister.domain.placement.rules import NodeLoad, least_used, node_problems


def test_no_node_leaves_every_mailbox_unplaced() -> None:
    assert least_used([], 3) == [None, None, None]


def test_the_least_used_node_wins_and_a_tie_goes_to_the_first_name() -> None:
    nodes = [NodeLoad(1, "node-b", 4), NodeLoad(2, "node-a", 4), NodeLoad(3, "node-c", 5)]
    assert least_used(nodes, 1) == [2]


def test_a_batch_fills_the_emptier_node_first_then_alternates() -> None:
    nodes = [NodeLoad(1, "node1", 3), NodeLoad(2, "node2", 0)]
    assert least_used(nodes, 6) == [2, 2, 2, 1, 2, 1]


def test_node_names_addresses_ports_and_states_are_checked() -> None:
    assert node_problems(name="node1", address="10.0.0.1", lmtp_port=24, state="active") == []
    problems = node_problems(name="Node 1", address="a b", lmtp_port=0, state="gone")
    assert [p.field for p in problems] == ["name", "address", "lmtp_port", "state"]
