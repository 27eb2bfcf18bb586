"""Adapters to outside systems (Microsoft Graph, LDAP, mail, chat), each behind a small protocol."""
