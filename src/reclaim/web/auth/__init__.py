"""Authentication and authorization: accounts, API tokens, sessions, CSRF, OIDC, roles."""
