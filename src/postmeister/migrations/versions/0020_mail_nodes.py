"""mail nodes and each mailbox's home node: the first slice of placement (issue 17)

Revision ID: 0020
Revises: 0019

`mail_nodes` registers the mail nodes mailboxes can be homed on; `addresses.home_node_id`
names a mailbox's home, NULL for every existing mailbox: unplaced, so a single-node
installation behaves exactly as before. Three views gain columns at their end (adding a
column keeps contract v1; nothing is removed or renamed): `dataplane_v1_mailboxes` the home
node's name, address and LMTP port (Postfix's transport map), `dataplane_v1_logins` and
`dataplane_v1_app_passwords` its name and address (Dovecot's proxying passdbs). `VIEWS` is
the literal snapshot of the whole contract at this revision, as in 0010 and 0015.
"""

import importlib.util
from pathlib import Path

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

CHANGED = ("dataplane_v1_mailboxes", "dataplane_v1_logins", "dataplane_v1_app_passwords")

# view name -> dialect -> SELECT (the whole contract at this revision)
VIEWS: dict[str, dict[str, str]] = {
    "dataplane_v1_domains": {
        "sqlite": """
SELECT d.name AS domain, d.customer_id AS customer_id FROM domains d
""",
        "postgresql": """
SELECT d.name AS domain, d.customer_id AS customer_id FROM domains d
""",
    },
    "dataplane_v1_mailboxes": {
        "sqlite": """
SELECT a.address AS address,
       d.name AS domain,
       a.local_part AS local_part,
       a.quota_bytes AS quota_bytes,
       CASE WHEN a.subaddress_extension THEN 1 ELSE 0 END AS subaddress_extension,
       n.name AS home_node,
       n.address AS home_host,
       n.lmtp_port AS home_lmtp_port
FROM addresses a JOIN domains d ON d.id = a.domain_id
LEFT JOIN mail_nodes n ON n.id = a.home_node_id
WHERE a.kind = 'mailbox'
""",
        "postgresql": """
SELECT a.address AS address,
       d.name AS domain,
       a.local_part AS local_part,
       a.quota_bytes AS quota_bytes,
       CASE WHEN a.subaddress_extension THEN 1 ELSE 0 END AS subaddress_extension,
       n.name AS home_node,
       n.address AS home_host,
       n.lmtp_port AS home_lmtp_port
FROM addresses a JOIN domains d ON d.id = a.domain_id
LEFT JOIN mail_nodes n ON n.id = a.home_node_id
WHERE a.kind = 'mailbox'
""",
    },
    "dataplane_v1_aliases": {
        "sqlite": """
SELECT a.address AS address, t.target AS target
FROM addresses a JOIN forward_targets t ON t.address_id = a.id
UNION ALL
SELECT a.address AS address, a.address AS target
FROM addresses a
WHERE a.kind = 'mailbox' AND EXISTS (SELECT 1 FROM forward_targets t WHERE t.address_id = a.id)
""",
        "postgresql": """
SELECT a.address AS address, t.target AS target
FROM addresses a JOIN forward_targets t ON t.address_id = a.id
UNION ALL
SELECT a.address AS address, a.address AS target
FROM addresses a
WHERE a.kind = 'mailbox' AND EXISTS (SELECT 1 FROM forward_targets t WHERE t.address_id = a.id)
""",
    },
    "dataplane_v1_alias_domains": {
        "sqlite": """
SELECT a.name AS alias_domain, m.name AS domain
FROM domains a JOIN domains m ON m.id = a.alias_of_id
""",
        "postgresql": """
SELECT a.name AS alias_domain, m.name AS domain
FROM domains a JOIN domains m ON m.id = a.alias_of_id
""",
    },
    "dataplane_v1_catchall": {
        "sqlite": """
SELECT d.name AS domain, c.target AS target
FROM domains d JOIN catchall_targets c ON c.domain_id = d.id
UNION ALL
SELECT a.name AS domain, c.target AS target
FROM domains a JOIN catchall_targets c ON c.domain_id = a.alias_of_id
""",
        "postgresql": """
SELECT d.name AS domain, c.target AS target
FROM domains d JOIN catchall_targets c ON c.domain_id = d.id
UNION ALL
SELECT a.name AS domain, c.target AS target
FROM domains a JOIN catchall_targets c ON c.domain_id = a.alias_of_id
""",
    },
    "dataplane_v1_logins": {
        "sqlite": """
SELECT a.address AS username,
       a.password_hash AS password_hash,
       CASE
         WHEN substr(a.password_hash, 1, 10) = '$argon2id$' THEN 'ARGON2ID'
         WHEN substr(a.password_hash, 1, 9) = '$argon2i$' THEN 'ARGON2I'
         ELSE 'CRYPT'
       END AS password_scheme,
       CASE WHEN a.submission_disabled THEN 1 ELSE 0 END AS submission_disabled,
       n.name AS home_node,
       n.address AS home_host
FROM addresses a
JOIN domains d ON d.id = a.domain_id
JOIN customers c ON c.id = d.customer_id
LEFT JOIN mail_nodes n ON n.id = a.home_node_id
WHERE a.kind = 'mailbox' AND a.password_hash IS NOT NULL AND a.password_hash <> ''
  AND c.suspended_at IS NULL
""",
        "postgresql": """
SELECT a.address AS username,
       a.password_hash AS password_hash,
       CASE
         WHEN substr(a.password_hash, 1, 10) = '$argon2id$' THEN 'ARGON2ID'
         WHEN substr(a.password_hash, 1, 9) = '$argon2i$' THEN 'ARGON2I'
         ELSE 'CRYPT'
       END AS password_scheme,
       CASE WHEN a.submission_disabled THEN 1 ELSE 0 END AS submission_disabled,
       n.name AS home_node,
       n.address AS home_host
FROM addresses a
JOIN domains d ON d.id = a.domain_id
JOIN customers c ON c.id = d.customer_id
LEFT JOIN mail_nodes n ON n.id = a.home_node_id
WHERE a.kind = 'mailbox' AND a.password_hash IS NOT NULL AND a.password_hash <> ''
  AND c.suspended_at IS NULL
""",
    },
    "dataplane_v1_app_passwords": {
        "sqlite": """
SELECT a.address AS username,
       p.secret_hash AS secret_sha256,
       p.id AS app_password_id,
       CASE WHEN a.submission_disabled THEN 1 ELSE 0 END AS submission_disabled,
       n.name AS home_node,
       n.address AS home_host
FROM app_passwords p JOIN addresses a ON a.id = p.address_id
JOIN domains d ON d.id = a.domain_id
JOIN customers c ON c.id = d.customer_id
LEFT JOIN mail_nodes n ON n.id = a.home_node_id
WHERE a.kind = 'mailbox' AND c.suspended_at IS NULL
""",
        "postgresql": """
SELECT a.address AS username,
       p.secret_hash AS secret_sha256,
       p.id AS app_password_id,
       CASE WHEN a.submission_disabled THEN 1 ELSE 0 END AS submission_disabled,
       n.name AS home_node,
       n.address AS home_host
FROM app_passwords p JOIN addresses a ON a.id = p.address_id
JOIN domains d ON d.id = a.domain_id
JOIN customers c ON c.id = d.customer_id
LEFT JOIN mail_nodes n ON n.id = a.home_node_id
WHERE a.kind = 'mailbox' AND c.suspended_at IS NULL
""",
    },
    "dataplane_v1_sender_logins": {
        "sqlite": """
SELECT a.address AS sender, a.address AS login, d.customer_id AS customer_id
FROM addresses a JOIN domains d ON d.id = a.domain_id
WHERE a.kind = 'mailbox'
UNION ALL
SELECT s.pattern AS sender, a.address AS login, d.customer_id AS customer_id
FROM sender_permissions s
JOIN addresses a ON a.id = s.address_id
JOIN domains d ON d.id = a.domain_id
WHERE a.kind = 'mailbox'
""",
        "postgresql": """
SELECT a.address AS sender, a.address AS login, d.customer_id AS customer_id
FROM addresses a JOIN domains d ON d.id = a.domain_id
WHERE a.kind = 'mailbox'
UNION ALL
SELECT s.pattern AS sender, a.address AS login, d.customer_id AS customer_id
FROM sender_permissions s
JOIN addresses a ON a.id = s.address_id
JOIN domains d ON d.id = a.domain_id
WHERE a.kind = 'mailbox'
""",
    },
    "dataplane_v1_recipient_policies": {
        "sqlite": """
SELECT a.address AS address, a.kind AS kind, a.antispam AS antispam
FROM addresses a
""",
        "postgresql": """
SELECT a.address AS address, a.kind AS kind, a.antispam AS antispam
FROM addresses a
""",
    },
    "dataplane_v1_autoresponders": {
        "sqlite": """
SELECT a.address AS username,
       a2.text AS text,
       CASE WHEN a2.active THEN 1 ELSE 0 END AS active,
       substr(a2.activates, 1, 10) AS activates,
       substr(a2.expires, 1, 10) AS expires,
       CAST(a2.address_id AS TEXT) || '-'
         || strftime('%Y%m%d%H%M%f', a2.updated_at) AS version
FROM autoresponders a2 JOIN addresses a ON a.id = a2.address_id
WHERE a.kind = 'mailbox'
""",
        "postgresql": """
SELECT a.address AS username,
       a2.text AS text,
       CASE WHEN a2.active THEN 1 ELSE 0 END AS active,
       to_char(a2.activates, 'YYYY-MM-DD') AS activates,
       to_char(a2.expires, 'YYYY-MM-DD') AS expires,
       CAST(a2.address_id AS TEXT) || '-'
         || to_char(a2.updated_at AT TIME ZONE 'UTC', 'YYYYMMDDHH24MISSUS') AS version
FROM autoresponders a2 JOIN addresses a ON a.id = a2.address_id
WHERE a.kind = 'mailbox'
""",
    },
    "dataplane_v1_sieve_scripts": {
        "sqlite": """
SELECT a.address AS username,
       'postmeister' AS script_name,
       a.address AS script_id,
       'require ["date", "fileinto", "mailbox", "relational", "vacation"];' || char(10)
       || CASE WHEN a.antispam = 'junk-folder' THEN
            'if header :is "X-Spam" "Yes" {' || char(10)
            || '  fileinto :create "Junk";' || char(10) || '  stop;' || char(10) || '}' || char(10)
          ELSE '' END
       || CASE WHEN r.active THEN
            'if allof(not header :is "X-Spam" "Yes"'
            || CASE WHEN r.activates IS NULL THEN ''
                 ELSE ', currentdate :value "ge" "date" "' || r.activates || '"' END
            || CASE WHEN r.expires IS NULL THEN ''
                 ELSE ', currentdate :value "lt" "date" "' || r.expires || '"' END
            || ') {' || char(10) || '  vacation :days 7 text:' || char(10)
            || r.body
            || CASE WHEN r.body = '' OR substr(r.body, -1) = char(10) THEN '' ELSE char(10) END
            || '.' || char(10) || ';' || char(10) || '}' || char(10)
          ELSE '' END AS script
FROM addresses a
LEFT JOIN (
  SELECT address_id,
         active,
         substr(activates, 1, 10) AS activates,
         substr(expires, 1, 10) AS expires,
         substr(replace(
                  char(10) || replace(replace(text, char(13) || char(10), char(10)),
                                  char(13), char(10)),
                  char(10) || '.', char(10) || '..'),
                2) AS body
  FROM autoresponders
) r ON r.address_id = a.id
WHERE a.kind = 'mailbox'
""",
        "postgresql": """
SELECT a.address AS username,
       'postmeister' AS script_name,
       a.address AS script_id,
       'require ["date", "fileinto", "mailbox", "relational", "vacation"];' || chr(10)
       || CASE WHEN a.antispam = 'junk-folder' THEN
            'if header :is "X-Spam" "Yes" {' || chr(10)
            || '  fileinto :create "Junk";' || chr(10) || '  stop;' || chr(10) || '}' || chr(10)
          ELSE '' END
       || CASE WHEN r.active THEN
            'if allof(not header :is "X-Spam" "Yes"'
            || CASE WHEN r.activates IS NULL THEN ''
                 ELSE ', currentdate :value "ge" "date" "' || r.activates || '"' END
            || CASE WHEN r.expires IS NULL THEN ''
                 ELSE ', currentdate :value "lt" "date" "' || r.expires || '"' END
            || ') {' || chr(10) || '  vacation :days 7 text:' || chr(10)
            || r.body
            || CASE WHEN r.body = '' OR right(r.body, 1) = chr(10) THEN '' ELSE chr(10) END
            || '.' || chr(10) || ';' || chr(10) || '}' || chr(10)
          ELSE '' END AS script
FROM addresses a
LEFT JOIN (
  SELECT address_id,
         active,
         to_char(activates, 'YYYY-MM-DD') AS activates,
         to_char(expires, 'YYYY-MM-DD') AS expires,
         substr(replace(
                  chr(10) || replace(replace(text, chr(13) || chr(10), chr(10)),
                                  chr(13), chr(10)),
                  chr(10) || '.', chr(10) || '..'),
                2) AS body
  FROM autoresponders
) r ON r.address_id = a.id
WHERE a.kind = 'mailbox'
""",
    },
    "dataplane_v1_dkim_rsa_keys": {
        "sqlite": """
SELECT d.name AS domain, k.selector AS selector, k.private_key AS private_key
FROM dkim_keys k JOIN domains d ON d.id = k.domain_id
WHERE k.algorithm = 'rsa' AND k.retired_at IS NULL
""",
        "postgresql": """
SELECT d.name AS domain, k.selector AS selector, k.private_key AS private_key
FROM dkim_keys k JOIN domains d ON d.id = k.domain_id
WHERE k.algorithm = 'rsa' AND k.retired_at IS NULL
""",
    },
    "dataplane_v1_dkim_ed25519_keys": {
        "sqlite": """
SELECT d.name AS domain, k.selector AS selector, k.private_key AS private_key
FROM dkim_keys k JOIN domains d ON d.id = k.domain_id
WHERE k.algorithm = 'ed25519' AND k.retired_at IS NULL
""",
        "postgresql": """
SELECT d.name AS domain, k.selector AS selector, k.private_key AS private_key
FROM dkim_keys k JOIN domains d ON d.id = k.domain_id
WHERE k.algorithm = 'ed25519' AND k.retired_at IS NULL
""",
    },
    "dataplane_v1_sending_limits": {
        "sqlite": """
SELECT a.address AS username,
       d.name AS domain,
       COALESCE(o.messages_per_hour, p.mailbox_messages_per_hour) AS messages_per_hour,
       COALESCE(o.messages_per_day, p.mailbox_messages_per_day) AS messages_per_day,
       COALESCE(o.recipients_per_hour, p.mailbox_recipients_per_hour) AS recipients_per_hour,
       COALESCE(o.recipients_per_day, p.mailbox_recipients_per_day) AS recipients_per_day,
       p.domain_messages_per_hour AS domain_messages_per_hour,
       p.domain_messages_per_day AS domain_messages_per_day,
       p.domain_recipients_per_hour AS domain_recipients_per_hour,
       p.domain_recipients_per_day AS domain_recipients_per_day
FROM addresses a
JOIN domains d ON d.id = a.domain_id
JOIN packages p ON p.id = d.package_id
LEFT JOIN sending_limit_overrides o ON o.address_id = a.id
WHERE a.kind = 'mailbox'
""",
        "postgresql": """
SELECT a.address AS username,
       d.name AS domain,
       COALESCE(o.messages_per_hour, p.mailbox_messages_per_hour) AS messages_per_hour,
       COALESCE(o.messages_per_day, p.mailbox_messages_per_day) AS messages_per_day,
       COALESCE(o.recipients_per_hour, p.mailbox_recipients_per_hour) AS recipients_per_hour,
       COALESCE(o.recipients_per_day, p.mailbox_recipients_per_day) AS recipients_per_day,
       p.domain_messages_per_hour AS domain_messages_per_hour,
       p.domain_messages_per_day AS domain_messages_per_day,
       p.domain_recipients_per_hour AS domain_recipients_per_hour,
       p.domain_recipients_per_day AS domain_recipients_per_day
FROM addresses a
JOIN domains d ON d.id = a.domain_id
JOIN packages p ON p.id = d.package_id
LEFT JOIN sending_limit_overrides o ON o.address_id = a.id
WHERE a.kind = 'mailbox'
""",
    },
}

FK_NAME = "fk_addresses_home_node_id_mail_nodes"


def _create(name: str, select: str) -> None:
    # The Sieve scripts contain tags (`:is`), which text() would take for bind parameters
    # unless the colons are escaped.
    create = f"CREATE VIEW {name} AS\n{select.strip()}"
    op.execute(sa.text(create.replace(":", "\\:")))


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.create_table(
        "mail_nodes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("address", sa.String(length=255), nullable=False),
        sa.Column("lmtp_port", sa.Integer(), server_default="24", nullable=False),
        sa.Column("state", sa.String(length=16), server_default="active", nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.func.current_timestamp(),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mail_nodes")),
        sa.UniqueConstraint("name", name=op.f("uq_mail_nodes_name")),
        sqlite_autoincrement=True,
    )
    for name in CHANGED:
        op.execute(f"DROP VIEW IF EXISTS {name}")
    if dialect == "sqlite":
        # SQLite adds a column with a foreign key in place (no table rebuild, which every
        # view on `addresses` would have to be dropped for); ALTER cannot add a constraint.
        op.execute(
            "ALTER TABLE addresses ADD COLUMN home_node_id INTEGER"
            f" CONSTRAINT {FK_NAME} REFERENCES mail_nodes (id) ON DELETE RESTRICT"
        )
    else:
        op.add_column("addresses", sa.Column("home_node_id", sa.Integer(), nullable=True))
        op.create_foreign_key(
            FK_NAME, "addresses", "mail_nodes", ["home_node_id"], ["id"], ondelete="RESTRICT"
        )
    op.create_index(op.f("ix_addresses_home_node_id"), "addresses", ["home_node_id"])
    for name in CHANGED:
        _create(name, VIEWS[name][dialect])


def _previous_views() -> dict[str, dict[str, str]]:
    """The contract before this revision: 0015's snapshot (0016 to 0019 changed no view)."""
    path = Path(__file__).with_name("0015_sending_limits.py")
    spec = importlib.util.spec_from_file_location("postmeister_migration_0015", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    views: dict[str, dict[str, str]] = module.VIEWS
    return views


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    previous = _previous_views()
    # SQLite cannot drop a column with a foreign key in place: the table is rebuilt, and it
    # checks every view on `addresses` while it does, so all views go around the change.
    dropped = list(VIEWS) if dialect == "sqlite" else list(CHANGED)
    for name in reversed(dropped):
        op.execute(f"DROP VIEW IF EXISTS {name}")
    op.drop_index(op.f("ix_addresses_home_node_id"), table_name="addresses")
    with op.batch_alter_table("addresses") as batch:
        if dialect != "sqlite":
            batch.drop_constraint(FK_NAME, type_="foreignkey")
        batch.drop_column("home_node_id")
    for name in dropped:
        _create(name, previous[name][dialect])
    op.drop_table("mail_nodes")
