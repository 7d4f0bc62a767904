"""Grafana dashboards and alert rules, provisioned as code (grafana-foundation-sdk).

The panels, alert rules and their generated provisioning files arrive with the dashboards issue;
they will read the named queries in `spancost.queries`, the same ones the CLI runs.
"""
