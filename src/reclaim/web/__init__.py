"""The admin web app and the REST API (``reclaim serve``); see docs/web.md."""
