"""RADIUS server (pyrad 2.6 ServerAsync): PAP, CHAP, MS-CHAPv2, accounting, CoA client."""
