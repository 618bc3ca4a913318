"""Both catalogs hold every text the templates ask for, so no page shows a bare key."""

from __future__ import annotations

import re
from typing import get_args

from postmeister.domain.dns.compare import STATES
from postmeister.domain.packages.service import LIMITS
from postmeister.domain.passwords.policy import RULES
from postmeister.sync.service import Result
from postmeister.web.i18n import DE, EN
from postmeister.web.templating import TEMPLATES

KEY = re.compile(r"""\bt\(\s*["']([a-z_.0-9-]+)["']\s*\)""")


def test_german_and_english_have_the_same_keys() -> None:
    assert set(DE) == set(EN)
    assert all(DE[key] for key in DE) and all(EN[key] for key in EN)


def test_every_literal_key_of_the_templates_and_every_policy_rule_is_translated() -> None:
    used = {key for path in TEMPLATES.rglob("*.html") for key in KEY.findall(path.read_text())}
    used |= {f"rule.{rule}" for rule in RULES}
    used |= {
        f"antispam.{policy}" for policy in ("reject", "junk-folder", "subject-rewrite", "none")
    }
    # The keys the templates build from a value: each value the services can return.
    used |= {f"limit.{name}" for name in LIMITS}
    used |= {f"dns.state.{state}" for state in STATES}
    used |= {f"sync.result.{result}" for result in get_args(Result)}
    used |= {"health.database", "health.scheduler"}
    assert used - set(EN) == set()
