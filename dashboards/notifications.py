"""Where spancost's alerts go: a contact point (Slack, e-mail) and the notification policy tree, as
Grafana alerting provisioning documents (API version 1).

`spancost dashboards build` writes them under `dashboards/provisioning/`:

    alerting/contact-points.yaml     contact_points(config)
    alerting/policies.yaml           notification_policies(config)

Each integration is built with grafana-foundation-sdk's alerting models (ContactPoint is one
integration; NotificationPolicy is a route) and wrapped in the provisioning file's own envelope
(orgId, name, receivers), as Grafana's file provisioning reads it (pkg/services/provisioning/alerting:
ContactPointV1/ReceiverV1, NotificiationPolicyV1). The Slack webhook URL is a `${NAME}` reference that
Grafana expands from its environment; no secret is ever written here.

A provisioned policy tree replaces the organisation's whole tree, so spancost's Grafana (the compose
stack) routes everything to the spancost contact point; alerts carrying ALERT_LABEL get their own
route with a slower repeat, spend being a daily matter.
"""

from __future__ import annotations

import json
from typing import Any

from grafana_foundation_sdk.builders import alerting as builders
from grafana_foundation_sdk.cog.encoder import JSONEncoder

from spancost.config import SpancostConfig
from spancost.dashboards.datasource import ORG_ID, grafana_env

CONTACT_POINTS_FILE = "alerting/contact-points.yaml"
"""Relative to the provisioning directory."""
POLICIES_FILE = "alerting/policies.yaml"
"""Relative to the provisioning directory."""

CONTACT_POINT_NAME = "spancost"
SLACK_RECEIVER_UID = "spancost-slack"
EMAIL_RECEIVER_UID = "spancost-email"
GRAFANA_DEFAULT_RECEIVER = "grafana-default-email"
"""The contact point every Grafana organisation starts with; the policy falls back to it when spancost
has no integration to send to."""

ALERT_LABEL = "spancost_alert"
"""The label every spancost alert rule carries (its value names the alert: budget_pace, ...)."""
GROUP_BY = ("grafana_folder", "alertname")
GROUP_WAIT = "30s"
GROUP_INTERVAL = "5m"
REPEAT_INTERVAL = "4h"
SPANCOST_REPEAT_INTERVAL = "12h"

_RECEIVER_ORDER = ("uid", "type", "settings", "disableResolveMessage")
_ROUTE_ORDER = ("receiver", "group_by", "object_matchers", "group_wait", "group_interval", "repeat_interval")


def _plain(model: Any, first: tuple[str, ...] = ()) -> dict[str, Any]:
    """An SDK model as plain JSON data (its to_json leaves nested models as objects), the keys in
    `first` leading so the generated files read well."""
    data = json.loads(json.dumps(model, cls=JSONEncoder))
    return {**{key: data[key] for key in first if key in data}, **data}


def _receivers(config: SpancostConfig) -> list[dict[str, Any]]:
    notify = config.notify
    integrations: list[builders.ContactPoint] = []
    if notify.slack_enabled:
        settings: dict[str, Any] = {"url": grafana_env(notify.slack_webhook_env)}
        if notify.slack_channel:
            settings["recipient"] = notify.slack_channel
        integrations.append(
            builders.ContactPoint()
            .uid(SLACK_RECEIVER_UID)
            .type("slack")
            .settings(settings)
            .disable_resolve_message(False)
        )
    if notify.email:
        integrations.append(
            builders.ContactPoint()
            .uid(EMAIL_RECEIVER_UID)
            .type("email")
            .settings({"addresses": ";".join(notify.email), "singleEmail": False})
            .disable_resolve_message(False)
        )
    return [_plain(integration.build(), _RECEIVER_ORDER) for integration in integrations]


def receiver_name(config: SpancostConfig) -> str:
    """The contact point spancost's alerts are routed to."""
    return CONTACT_POINT_NAME if _receivers(config) else GRAFANA_DEFAULT_RECEIVER


def contact_points(config: SpancostConfig) -> dict[str, Any]:
    """alerting/contact-points.yaml: one contact point, `spancost`, with a Slack integration (unless
    `[notify] slack_webhook_env` is empty) and an e-mail one (when `[notify] email` lists addresses);
    none at all when neither is configured."""
    receivers = _receivers(config)
    points = [{"orgId": ORG_ID, "name": CONTACT_POINT_NAME, "receivers": receivers}] if receivers else []
    return {"apiVersion": 1, "contactPoints": points}


def notification_policies(config: SpancostConfig) -> dict[str, Any]:
    """alerting/policies.yaml: the organisation's policy tree, rooted at the spancost contact point."""
    receiver = receiver_name(config)
    spancost_route = (
        builders.NotificationPolicy()
        .receiver(receiver)
        .object_matchers([[ALERT_LABEL, "=~", ".+"]])
        .group_by(list(GROUP_BY))
        .repeat_interval(SPANCOST_REPEAT_INTERVAL)
        .continue_val(False)
    )
    root = (
        builders.NotificationPolicy()
        .receiver(receiver)
        .group_by(list(GROUP_BY))
        .group_wait(GROUP_WAIT)
        .group_interval(GROUP_INTERVAL)
        .repeat_interval(REPEAT_INTERVAL)
        .routes([spancost_route])
    )
    tree = _plain(root.build(), _ROUTE_ORDER)
    tree["routes"] = [{**{k: r[k] for k in _ROUTE_ORDER if k in r}, **r} for r in tree["routes"]]
    return {"apiVersion": 1, "policies": [{"orgId": ORG_ID, **tree}]}
