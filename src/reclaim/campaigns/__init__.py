"""Campaigns: asking employees whether they still need a license.

- :mod:`~reclaim.campaigns.tokens`: signed, expiring response-link tokens;
- :mod:`~reclaim.campaigns.messages`: composing one message per person (templates);
- :mod:`~reclaim.campaigns.delivery`: the Channel protocol and fallback delivery;
- :mod:`~reclaim.campaigns.batching`, :mod:`~reclaim.campaigns.quiet_hours`: when and
  with what each person is written to;
- the channels themselves are connectors: ``reclaim.connectors.email``, ``teams``,
  ``slack``.

Nothing is imported here: the connectors import this package's modules, so this file
must not import them back.
"""
