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
