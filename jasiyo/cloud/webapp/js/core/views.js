// Figures the views show, computed from Fold.state(). Amounts are integer minor units.

// Each subscriber's balance: the sum of their ledger entries (jasiyo/agent/ledger.py:
// positive is in the customer's favour — wallet credit —, negative is what they owe).
// {username: {balance_minor, currency}}; a subscriber with no entries has none here.
export function balances(state) {
  const out = {};
  for (const e of Object.values(state.ledger || {})) {
    if (typeof e.username !== "string" || typeof e.amount_minor !== "number") continue;
    const b = (out[e.username] ||= { balance_minor: 0, currency: e.currency || null });
    b.balance_minor += e.amount_minor;
  }
  return out;
}

const formatters = new Map();

// The local calendar day (YYYY-MM-DD) of unix seconds `at` in `timeZone` (IANA name).
export function localDay(at, timeZone) {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat("en-CA", { timeZone, year: "numeric", month: "2-digit", day: "2-digit" });
    formatters.set(timeZone, f);
  }
  const parts = Object.fromEntries(f.formatToParts(new Date(at * 1000)).map((p) => [p.type, p.value]));
  return `${parts.year}-${parts.month}-${parts.day}`;
}

// Payments by local day and method: [{day, currency, total_minor, count, by_method:
// {method: amount_minor}}], oldest day first (one entry per day and currency).
export function revenueByDay(state, timeZone = "UTC") {
  const days = new Map();
  for (const p of Object.values(state.payment || {})) {
    const at = Number(p.received_at);
    if (!Number.isFinite(at) || typeof p.amount_minor !== "number") continue;
    const day = localDay(at, timeZone);
    const k = `${day} ${p.currency}`;
    let d = days.get(k);
    if (!d) {
      d = { day, currency: p.currency, total_minor: 0, count: 0, by_method: {} };
      days.set(k, d);
    }
    d.total_minor += p.amount_minor;
    d.count += 1;
    const m = p.method || "other";
    d.by_method[m] = (d.by_method[m] || 0) + p.amount_minor;
  }
  return [...days.values()].sort((a, b) => (a.day < b.day ? -1 : a.day > b.day ? 1 : String(a.currency) < String(b.currency) ? -1 : 1));
}
