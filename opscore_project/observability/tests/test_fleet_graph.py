"""The server-side layout of workflow graphs (pure Python)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from opscore_project.observability.fleet.graph import NODE_H, layout_definition
from workflows.validation import validate_definition

SAMPLES = sorted(
    path
    for path in (Path(__file__).resolve().parents[3] / "workflows" / "samples").iterdir()
    if path.suffix in (".yaml", ".yml", ".json")
)


def test_a_chain_is_one_straight_row():
    layout = layout_definition(
        [
            {"taskId": "a", "agentCapability": "x", "nextTaskId": "b"},
            {"taskId": "b", "agentCapability": "x", "nextTaskId": "c"},
            {"taskId": "c", "agentCapability": "x"},
        ]
    )
    assert len({node.y for node in layout.nodes}) == 1
    assert [node.x for node in layout.nodes] == sorted(node.x for node in layout.nodes)
    assert [(e.source, e.target, e.kind) for e in layout.edges] == [("a", "b", "next"), ("b", "c", "next")]


def test_a_next_and_a_depends_on_naming_the_same_pair_draw_one_edge():
    layout = layout_definition(
        [
            {"taskId": "a", "agentCapability": "x", "nextTaskId": "b"},
            {"taskId": "b", "agentCapability": "x", "dependsOn": ["a"]},
        ]
    )
    assert [(e.source, e.target, e.kind) for e in layout.edges] == [("a", "b", "next")]


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_sample_workflows_lay_out_left_to_right_without_overlaps(path):
    spec = validate_definition(yaml.safe_load(path.read_text()))
    layout = layout_definition(spec["tasks"])
    nodes = {node.id: node for node in layout.nodes}
    assert set(nodes) == {task["taskId"] for task in spec["tasks"]}
    for edge in layout.edges:
        if edge.kind != "fallback":
            assert nodes[edge.source].x < nodes[edge.target].x, edge
    boxes = sorted((node.x, node.y) for node in layout.nodes)
    for (x1, y1), (x2, y2) in zip(boxes, boxes[1:], strict=False):
        assert x1 != x2 or y2 - y1 >= NODE_H, "overlapping boxes"
    assert all(
        0 <= n.x and n.x + n.w <= layout.width and 0 <= n.y and n.y + n.h <= layout.height for n in nodes.values()
    )
