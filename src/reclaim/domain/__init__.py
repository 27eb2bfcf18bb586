"""Pure logic: no SQL, no HTTP, no clock reads. Time comes in as ``now`` / ``as_of``."""
