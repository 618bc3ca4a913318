"""Operating the controller: health and readiness (`health`), Prometheus metrics
(`metrics`), structured logs (`logs`) with the request context (`context`), and backup and
restore (`backup`). The HTTP side is `api/observe.py` (request id, access line, request
metrics) and `api/ops.py` (`/healthz`, `/readyz`, `/metrics`); the milters' metrics live
with the milters (`dataplane/milter/metrics.py`), the data-plane check in
`dataplane/status.py`."""
