"""RADIUS server (pyrad 2.6 ServerAsync): PAP, CHAP, MS-CHAPv2, accounting, CoA client.

Public pieces (import them from their modules; this package imports nothing eagerly):

* :class:`jasiyo.radius.server.RadiusServer` -- ``RadiusServer(backend, address, auth_port,
  acct_port)``, ``await start()``, ``await stop()``, ``stats`` (:class:`RadiusStats`).
* :mod:`jasiyo.radius.backend` -- the :class:`RadiusBackend` protocol the agent implements,
  :class:`NasClient`, :class:`AuthSubject`, :class:`AcctRecord`.
* :class:`jasiyo.radius.memory.MemoryBackend` -- an in-memory backend for tests and demos.
* :func:`jasiyo.radius.policy.authorize` -- the pure accept/reject decision.
* :mod:`jasiyo.radius.mschap` -- MS-CHAPv2 (RFC 2759) and MPPE keys (RFC 3079, RFC 2548).
* :mod:`jasiyo.radius.coa` -- ``disconnect``/``change`` (RFC 5176) and sync wrappers.
* :func:`jasiyo.radius.dictionaries.load_dictionary` -- the shipped FreeRADIUS-format
  dictionaries (RFC, Microsoft, MikroTik).
"""
