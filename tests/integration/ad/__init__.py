"""Integration tests against a real Samba AD domain controller."""
