"""Test peers that Reclaim ships: a Microsoft Graph-compatible server, Samba AD, fixtures."""
