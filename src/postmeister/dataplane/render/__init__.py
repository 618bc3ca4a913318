"""Pure renderers: a `Site` in, configuration files out. No I/O here (see `stack.py`)."""

from __future__ import annotations

from postmeister.dataplane.render.authpolicy import authpolicy_config
from postmeister.dataplane.render.dovecot import render_dovecot
from postmeister.dataplane.render.milter import milter_config
from postmeister.dataplane.render.model import RenderedFile, Site
from postmeister.dataplane.render.opendkim import render_opendkim
from postmeister.dataplane.render.postfix import render_postfix
from postmeister.dataplane.render.rspamd import render_rspamd


def render_site(site: Site) -> list[RenderedFile]:
    """Every file of the data plane for `site`, in a stable order."""
    files = [
        *render_postfix(site),
        *render_dovecot(site),
        milter_config(site),
        *render_rspamd(site),
        *render_opendkim(site),
    ]
    if site.auth_policy is not None:
        files.append(authpolicy_config(site.auth_policy))
    return files


__all__ = ["RenderedFile", "Site", "render_site"]
