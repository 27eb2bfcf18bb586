"""Integration tests of the Microsoft Graph connector against the Graph test server."""
