"""The POP agent: local store, billing rules, enforcement, scheduler, runtime."""
