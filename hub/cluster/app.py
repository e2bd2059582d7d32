"""The cluster add-on (`redis.url` set): several hub nodes as one hub.

`setup` runs after the cameras slice (this node claims its cameras) and before every other
slice, so the slices find `app[LINK]` (`hub.core.cluster`) filled by the time they start and
their contexts are torn down before the cluster's. It adds:

- the owner-forwarding middleware (after authentication): requests for objects another node
  owns are served by that node (`hub.cluster.proxy`);
- the cluster itself (Redis presence, ownership map, cross-node events: `hub.cluster.service`),
  the cameras of the other nodes viewed here (`hub.cluster.cameras`), who is connected to the
  other nodes (`hub.cluster.presence`), owner forwarding and merged lists
  (`hub.cluster.proxy`, which is the `ClusterLink` the slices see);
- its metric families.
"""

from __future__ import annotations

from aiohttp import web

from config.schema import HubConfig
from hub.cluster.cameras import remote_cameras_ctx
from hub.cluster.presence import cluster_presence_ctx
from hub.cluster.proxy import cluster_proxy_ctx, owner_proxy
from hub.cluster.service import CLUSTER, ClusterState, cluster_ctx
from hub.http.metrics import METRICS, Family


def setup(app: web.Application, config: HubConfig) -> None:
    app.middlewares.append(owner_proxy)
    app.cleanup_ctx.append(cluster_ctx)
    app.cleanup_ctx.append(remote_cameras_ctx)
    app.cleanup_ctx.append(cluster_presence_ctx)
    app.cleanup_ctx.append(cluster_proxy_ctx)
    app[METRICS].add("cluster", lambda family: _families(app, family))


def _families(app: web.Application, family: Family) -> None:
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
