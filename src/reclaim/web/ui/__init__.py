"""Server-rendered pages for admins (Jinja2, autoescaped, no assets from the internet)."""
