"""A workflow definition laid out as a left-to-right layered graph, ready to draw as SVG.

Pure Python, no I/O: columns are the longest path from a start task over ``nextTaskId``/``dependsOn`` edges
(a fallback stands one column right of the task it replaces), rows are ordered by the barycentre of their
predecessors (two sweeps, enough for workflow-sized graphs), and every edge is a cubic curve between the right
side of its source and the left side of its target.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

NODE_W = 168
NODE_H = 46
COL_GAP = 72
ROW_GAP = 22
MARGIN = 16


@dataclass
class Edge:
    source: str
    target: str
    kind: str  # "next" | "depends" | "fallback"
    path: str = ""


@dataclass
class Node:
    id: str
    label: str
    capability: str
    column: int = 0
    row: int = 0
    x: int = 0
    y: int = 0
    w: int = NODE_W
    h: int = NODE_H
    status: str = ""
    attempts: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Layout:
    nodes: list[Node]
    edges: list[Edge]
    width: int
    height: int


def definition_edges(tasks: list[dict[str, Any]]) -> list[Edge]:
    """The edges of a definition, one per (source, target) and kind; ``nextTaskId`` wins over a ``dependsOn``
    naming the same pair (both say "runs after")."""
    known = {task["taskId"] for task in tasks}
    edges: dict[tuple[str, str], Edge] = {}
    for task in tasks:
        nxt = task.get("nextTaskId")
        if nxt in known:
            edges[(task["taskId"], nxt)] = Edge(task["taskId"], nxt, "next")
    for task in tasks:
        for dep in task.get("dependsOn") or []:
            if dep in known:
                edges.setdefault((dep, task["taskId"]), Edge(dep, task["taskId"], "depends"))
    fallbacks = [
        Edge(task["taskId"], task["fallbackTaskId"], "fallback")
        for task in tasks
        if task.get("fallbackTaskId") in known
    ]
    return [*edges.values(), *fallbacks]


def _columns(order: list[str], edges: list[Edge]) -> dict[str, int]:
    preds: dict[str, list[tuple[str, str]]] = {tid: [] for tid in order}
    for edge in edges:
        preds[edge.target].append((edge.source, edge.kind))
    column: dict[str, int] = {}
    visiting: set[str] = set()

    def col(tid: str) -> int:
        if tid in column:
            return column[tid]
        if tid in visiting:  # a cycle (validation forbids them): cut it here
            return 0
        visiting.add(tid)
        value = max((col(src) + 1 for src, _kind in preds[tid]), default=0)
        visiting.discard(tid)
        column[tid] = value
        return value

    for tid in order:
        col(tid)
    return column


def layout_definition(tasks: list[dict[str, Any]]) -> Layout:
    """Lay out the tasks of a normalised definition (``spec["tasks"]``)."""
    order = [task["taskId"] for task in tasks]
    edges = definition_edges(tasks)
    columns = _columns(order, edges)
    nodes = {
        task["taskId"]: Node(
            id=task["taskId"],
            label=task.get("name") or task["taskId"],
            capability=str(task.get("agentCapability") or ""),
            column=columns[task["taskId"]],
        )
        for task in tasks
    }
    by_column: dict[int, list[str]] = {}
    for tid in order:
        by_column.setdefault(columns[tid], []).append(tid)
    preds: dict[str, list[str]] = {tid: [] for tid in order}
    for edge in edges:
        preds[edge.target].append(edge.source)
    for _sweep in range(2):
        for index in sorted(by_column):
            if index == 0:
                continue
            position = {tid: row for col in by_column.values() for row, tid in enumerate(col)}
            by_column[index].sort(
                key=lambda tid: (
                    sum(position[p] for p in preds[tid]) / len(preds[tid]) if preds[tid] else position[tid],
                    order.index(tid),
                )
            )
    tallest = max(len(col) for col in by_column.values())
    height = MARGIN * 2 + tallest * NODE_H + (tallest - 1) * ROW_GAP
    for index, col in by_column.items():
        # Centre short columns vertically so chains read as a straight line.
        offset = (tallest - len(col)) * (NODE_H + ROW_GAP) / 2
        for row, tid in enumerate(col):
            node = nodes[tid]
            node.row = row
            node.x = MARGIN + index * (NODE_W + COL_GAP)
            node.y = int(MARGIN + offset + row * (NODE_H + ROW_GAP))
    width = MARGIN * 2 + (max(by_column) + 1) * NODE_W + max(by_column) * COL_GAP
    for edge in edges:
        edge.path = _curve(nodes[edge.source], nodes[edge.target])
    return Layout(nodes=[nodes[tid] for tid in order], edges=edges, width=width, height=height)


def _curve(source: Node, target: Node) -> str:
    x1, y1 = source.x + source.w, source.y + source.h / 2
    x2, y2 = target.x, target.y + target.h / 2
    if x2 <= x1:  # same or earlier column (a fallback beside its task): loop below
        y1, y2 = source.y + source.h, target.y + target.h
        x1, x2 = source.x + source.w / 2, target.x + target.w / 2
        dip = max(y1, y2) + 28
        return f"M{x1:g},{y1:g} C{x1:g},{dip:g} {x2:g},{dip:g} {x2:g},{y2 + 6:g}"
    bend = (x2 - x1) / 2
    return f"M{x1:g},{y1:g} C{x1 + bend:g},{y1:g} {x2 - bend:g},{y2:g} {x2 - 6:g},{y2:g}"
