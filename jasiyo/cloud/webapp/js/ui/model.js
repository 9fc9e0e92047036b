// The views' data, derived from the folded state (core/fold.js) in one pass after each
// batch of events: sorted lists, balances, search text. Nothing here talks to the cloud.

import { dayKey, num } from "./format.js";

const values = (obj) => (obj ? Object.values(obj) : []);

/** The tenant's time zone and currency: from the first POP that publishes them. */
export function tenantSettings(state) {
  let timezone = null;
  let currency = null;
  for (const pop of values(state.pop)) {
    if (pop.retired) continue;
    timezone = timezone || (typeof pop.timezone === "string" ? pop.timezone : null);
    currency = currency || (typeof pop.currency === "string" ? pop.currency : null);
  }
  if (!currency) currency = values(state.plan).find((p) => p.currency)?.currency || "KES";
  return { timezone: timezone || "UTC", currency };
}

export function buildModel(state, myName) {
  const settings = tenantSettings(state);
  const balance = new Map();
  for (const entry of values(state.ledger)) {
    const user = entry.username;
    const amount = num(entry.amount_minor);
    if (typeof user !== "string" || amount === null) continue;
    balance.set(user, (balance.get(user) || 0) + amount);
  }
  const plans = state.plan || {};
  const subscribers = [];
  for (const [username, s] of Object.entries(state.subscriber || {})) {
    const plan = plans[s.plan];
    const row = {
      username,
      name: typeof s.name === "string" ? s.name : "",
      phone: typeof s.phone === "string" ? s.phone : "",
      status: typeof s.status === "string" ? s.status : "",
      reason: typeof s.status_reason === "string" ? s.status_reason : "",
      manual: !!s.manual_suspend,
      plan: typeof s.plan === "string" ? s.plan : "",
      paidUntil: num(s.paid_until),
      homePop: typeof s.home_pop === "string" ? s.home_pop : "",
      homeRouter: typeof s.home_router === "string" ? s.home_router : "",
      ip: typeof s.ip === "string" ? s.ip : "",
      service: typeof s.service === "string" ? s.service : "",
      smsConsent: s.sms_consent,
      balance: balance.get(username) || 0,
      currency: (plan && plan.currency) || settings.currency,
    };
    row.search = `${username} ${row.name} ${row.phone} ${row.plan} ${row.status} ${row.homePop}`.toLowerCase();
    subscribers.push(row);
  }
  subscribers.sort((a, b) => (a.username < b.username ? -1 : a.username > b.username ? 1 : 0));

  const payments = values(state.payment)
    .filter((p) => typeof p.reference === "string" && num(p.amount_minor) !== null)
    .sort((a, b) => (num(b.received_at) || 0) - (num(a.received_at) || 0));

  const requests = [];
  for (const [key, r] of Object.entries(state.request || {})) {
    const result = (state.request_result || {})[key] || null;
    requests.push({ key, ...r, result, mine: r.by === myName });
  }
  requests.sort((a, b) => (num(b.at) || 0) - (num(a.at) || 0));

  return {
    settings,
    subscribers,
    byUsername: new Map(subscribers.map((s) => [s.username, s])),
    plans: Object.entries(plans).map(([name, p]) => ({ name, ...p })).sort((a, b) => (a.name < b.name ? -1 : 1)),
    payments,
    suspense: Object.entries(state.suspense || {})
      .map(([key, s]) => ({ key, ...s }))
      .sort((a, b) => (a.status === "open" ? 0 : 1) - (b.status === "open" ? 0 : 1) || (num(b.received_at) || 0) - (num(a.received_at) || 0)),
    pops: Object.entries(state.pop || {}).map(([name, p]) => ({ name, ...p })),
    vouchers: Object.entries(state.voucher || {}).map(([code, v]) => ({ code, ...v, use: (state.voucher_use || {})[code] || null })),
    consent: values(state.sms_consent),
    requests,
  };
}

/** What the "view" cache keeps: enough for the subscriber list (a reopen shows it before
 * the whole fold is restored). */
export function viewOf(model) {
  return {
    settings: model.settings,
    plans: model.plans,
    subscribers: model.subscribers.map(({ search, ...s }) => s),
  };
}

/** A model from a cached view: the subscriber list only, the other lists empty for now. */
export function modelFromView(view) {
  const subscribers = view.subscribers.map((s) => ({
    ...s,
    search: `${s.username} ${s.name} ${s.phone} ${s.plan} ${s.status} ${s.homePop}`.toLowerCase(),
  }));
  return {
    settings: view.settings,
    subscribers,
    byUsername: new Map(subscribers.map((s) => [s.username, s])),
    plans: view.plans,
    payments: [],
    suspense: [],
    pops: [],
    vouchers: [],
    consent: [],
    requests: [],
    partial: true,
  };
}

/** Revenue per local day (last ``days`` days, oldest first) and per method. */
export function revenue(payments, tz, days = 30, now = Date.now() / 1000) {
  const keys = [];
  for (let i = days - 1; i >= 0; i--) keys.push(dayKey(now - i * 86400, tz));
  const unique = [...new Set(keys)];
  const byDay = new Map(unique.map((k) => [k, 0]));
  const byMethod = new Map();
  const first = now - days * 86400 - 86400;
  // Every zone's offset is a multiple of 15 minutes: one formatter call per quarter hour.
  const quarter = new Map();
  for (const p of payments) {
    const at = num(p.received_at);
    if (at === null || at < first) continue;
    const q = Math.floor(at / 900);
    let k = quarter.get(q);
    if (k === undefined) quarter.set(q, (k = dayKey(q * 900, tz)));
    if (!byDay.has(k)) continue;
    const amount = num(p.amount_minor);
    byDay.set(k, byDay.get(k) + amount);
    const m = typeof p.method === "string" ? p.method : "other";
    byMethod.set(m, (byMethod.get(m) || 0) + amount);
  }
  return { byDay: [...byDay.entries()], byMethod: [...byMethod.entries()].sort((a, b) => b[1] - a[1]) };
}
