"""The bundled demo: a generated organization, its usage, and its license groups."""
