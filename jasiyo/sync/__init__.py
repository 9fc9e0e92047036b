"""Event log, clocks, envelope encryption and the sync client."""
