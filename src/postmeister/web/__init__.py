"""The web interface: the customer menu, mailbox self-service and administration.

A third thin layer beside `api/`: routes parse forms, call the same services as the API
(with the same tenancy statement), and render Jinja2 templates; no rule lives here.
"""
