"""How a reclamation reaches the outside: the directory port, the write gate, askers.

- :mod:`~reclaim.workflows.directory`: the small protocol every directory workflow
  implements (Entra ID, on-prem AD, manual) and the registry that picks one per policy;
- :mod:`~reclaim.workflows.gate`: the one gate every directory write goes through;
- :mod:`~reclaim.workflows.asker`: how a question reaches an employee;
- :mod:`~reclaim.workflows.manual`: the ``manual`` workflow (a task list for an admin).
"""
