"""The DNS records a hosted domain needs, and a live check of what is published (issue 14,
item 3): `rules` (the expected records), `compare` (published vs expected), `zone` (the
zone-file snippet), `check` (the lookups), `service` (a domain's records from the database).
"""
