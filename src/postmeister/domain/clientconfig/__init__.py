"""Client autoconfiguration: what Thunderbird, Outlook and Apple devices are told about a
hosted domain's mail servers (issue 13, item 5)."""
