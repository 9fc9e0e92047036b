"""Paystack (Nigeria, Ghana, Kenya, South Africa): hosted checkout, verify, signed webhooks.

from jasiyo.payments.paystack import PaystackProvider
from jasiyo.payments.paystack.sim import PaystackSim   # the simulator, for tests and demos
"""

from __future__ import annotations

from jasiyo.payments.paystack.provider import PaystackProvider, signature

__all__ = ["PaystackProvider", "signature"]
