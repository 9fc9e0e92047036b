"""M-Pesa through Safaricom's Daraja API: STK push (Lipa na M-Pesa Online) and C2B paybill.

from jasiyo.payments.mpesa import DarajaProvider
from jasiyo.payments.mpesa.sim import DarajaSim     # the simulator, for tests and demos
"""

from __future__ import annotations

from jasiyo.payments.mpesa.provider import DarajaProvider
from jasiyo.payments.mpesa.wire import c2b_accept, c2b_confirmation_ack, c2b_reject

__all__ = ["DarajaProvider", "c2b_accept", "c2b_confirmation_ack", "c2b_reject"]
