"""The config-host daemon: gate every policy change before kumod sees it, detect drift, record decisions.

One module per job: `config` (the daemon's configuration file), `layout` (releases and the live link),
`sources` (where candidates come from), `watcher` (filesystem events, debounced), `gate` (audit,
validate, promote or refuse), `drift`, `epoch` (the config epoch bump client), `state` (crash-safe
state on disk), `lock`, `metrics`, `logs`, `recorder` (runbook entries and pushes), `service` (the
main loop) and `cli` (the `kumo-audit daemon` commands).
"""
