"""The managed block's `proxy_read_maps` keeps every table of the installed Postfix's
default list (replacing it broke the operator's own tables: Debian's chrooted smtpd then
refused to start) and adds the one Postmeister map that is not in it."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from postmeister.dataplane.render.postfix import POSTFIX_DEFAULT_PROXY_READ_MAPS


def test_the_rendered_list_holds_the_installed_postfixs_default() -> None:
    if shutil.which("postconf") is None:
        pytest.fail("needs Debian's postfix (scripts/install-dataplane-packages)")
    shown = subprocess.run(
        ["postconf", "-dh", "proxy_read_maps"], capture_output=True, text=True, check=True
    ).stdout.split()
    assert shown, "postconf printed no default"
    assert set(shown) <= set(POSTFIX_DEFAULT_PROXY_READ_MAPS.split())
