"""Prometheus families of the cluster (hub/cluster/service.py), rendered by hub/http/metrics.py."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from hub.cluster.service import ClusterState

Family = Callable[[str, str, str, list[tuple[str, float]]], None]


def cluster_families(app: web.Application, family: Family) -> None:
    from hub.cluster.service import CLUSTER

    cluster = app.get(CLUSTER)
    if cluster is None or cluster.state is ClusterState.OFF:
        return
    node = f'node="{cluster.node.id}"'
    up = 1.0 if cluster.state is ClusterState.UP else 0.0
    family("zzhub_cluster_up", "gauge", "1 while Redis is reachable.", [(node, up)])
    family(
        "zzhub_cluster_nodes", "gauge", "Live hub nodes seen.", [(node, 1.0 + len(cluster.peers))]
    )
    family(
        "zzhub_cluster_events_sent_total",
        "counter",
        "Events sent to other nodes.",
        [(node, float(cluster.sent))],
    )
    family(
        "zzhub_cluster_events_received_total",
        "counter",
        "Events received from other nodes.",
        [(node, float(cluster.received))],
    )
    family(
        "zzhub_cluster_events_dropped_total",
        "counter",
        "Events for other nodes dropped while Redis was away (outbox full).",
        [(node, float(cluster.dropped))],
    )
    family(
        "zzhub_cluster_conflicts_total",
        "counter",
        "Ids this node keeps that another live node had claimed first (twins numbered while "
        "Redis was away).",
        [(node, float(cluster.conflicts_total))],
    )
    family(
        "zzhub_cluster_reconnects_total",
        "counter",
        "Reconnect attempts to Redis.",
        [(node, float(cluster.reconnects))],
    )
