"""`authpolicy.json`: the configuration of the Postmeister auth policy service (brute-force
limits per client address and per account; `postmeister dataplane authpolicy --config`)."""

from __future__ import annotations

import json

from postmeister.dataplane.authpolicy import Config
from postmeister.dataplane.render.model import AuthPolicy, RenderedFile


def authpolicy_config(policy: AuthPolicy) -> RenderedFile:
    config = Config(
        host=policy.endpoint.host,
        port=policy.endpoint.port,
        limits=policy.limits,
        trusted_networks=policy.trusted_networks,
    )
    content = json.dumps(config.as_json(), indent=2, sort_keys=True) + "\n"
    return RenderedFile("authpolicy.json", content)
