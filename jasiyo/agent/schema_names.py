"""The names of the store's migrations (:mod:`jasiyo.agent.schema`), in order.

Opening the store checks these against ``_sqlite_migrations`` with plain sqlite3, so a
command on an up-to-date store never imports sqlite-utils and the migrations (a good part
of a short command's start-up). Add each new migration's name here too; a test checks
that this list and schema.py agree.
"""

MIGRATION_SET = "jasiyo-agent"

NAMES: tuple[str, ...] = (
    "m001_core",
    "m002_billing",
    "m003_billing_fup",
    "m004_enforce_address",
    "m005_enforce_plan_rate_precise",
    "m006_enforce_removed",
    "m007_invoice_rate_total",
    "m008_enforce_stale_sessions",
    "m009_payment_reference_nocase",
    "m010_invoice_carried",
    "m011_stale_session_back",
    "m012_money_in",
    "m013_period_months_mo",
    "m014_invoice_documents",
    "m015_enforce_coalesce",
    "m016_invoice_purchase",
    "m012_radsec",
    "m020_sms",
    "m021_vouchers_session_limits",
    "m031_pops_home_usage",
    "m032_privacy_audit_sealed",
    "m033_privacy_erasure",
    "m034_usage_rev",
    "m035_dashboard_requests",
)
