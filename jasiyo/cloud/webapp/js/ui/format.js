// Money in integer minor units, dates in the tenant's time zone: the same output as the
// Python side (jasiyo/money.py format_money), so staff read the same figures everywhere.

//: ISO 4217 minor-unit exponents (jasiyo/money.py CURRENCY_EXPONENT).
const EXPONENT = {
  KES: 2, NGN: 2, GHS: 2, ZAR: 2, TZS: 2, USD: 2, EUR: 2, GBP: 2,
  XOF: 0, XAF: 0, UGX: 0, RWF: 0, ZMW: 2, MWK: 2, ETB: 2, EGP: 2,
};

/** A number from an event, or null. The core's JSON reader boxes floats written as
 * ``1.0`` (Python's float) in Number objects, so unbox those. */
export function num(v) {
  if (v instanceof Number) v = v.valueOf();
  return typeof v === "number" && Number.isFinite(v) ? v : null;
}

export function exponent(currency) {
  return EXPONENT[currency] ?? 2;
}

/** 150000, "KES" -> "KES 1,500.00" (integers only: no float rounding of money). */
export function money(minor, currency) {
  minor = num(minor);
  if (minor === null) return "—";
  const cur = currency || "";
  const exp = exponent(cur);
  const sign = minor < 0 ? "-" : "";
  const abs = BigInt(Math.abs(Math.trunc(minor)));
  const base = 10n ** BigInt(exp);
  const whole = (abs / base).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  const frac = exp ? "." + (abs % base).toString().padStart(exp, "0") : "";
  return `${sign}${cur} ${whole}${frac}`.trim();
}

/** "1,500.50" in ``currency`` -> 150050 minor units; throws Error with a readable message. */
export function parseMoney(text, currency) {
  const raw = String(text).trim();
  if (!/^(\d+|\d{1,3}(,\d{3})+)(\.\d+)?$/.test(raw)) {
    throw new Error(`bad amount "${raw}": expected a number like 1500 or 1500.00`);
  }
  const [whole, frac = ""] = raw.replace(/,/g, "").split(".");
  const exp = exponent(currency);
  if (frac.length > exp) throw new Error(`bad amount "${raw}": ${currency} has ${exp} decimal places`);
  const minor = Number(BigInt(whole) * 10n ** BigInt(exp) + BigInt(frac.padEnd(exp, "0") || "0"));
  if (minor <= 0) throw new Error("the amount must be above zero");
  if (minor > 1e15) throw new Error(`bad amount "${raw}": too large`);
  return minor;
}

const formatters = new Map();

function formatter(tz, opts) {
  const key = tz + JSON.stringify(opts);
  if (!formatters.has(key)) {
    let f;
    try {
      f = new Intl.DateTimeFormat("en-GB", { ...opts, timeZone: tz || "UTC" });
    } catch {
      f = new Intl.DateTimeFormat("en-GB", { ...opts, timeZone: "UTC" }); // an unknown zone name
    }
    formatters.set(key, f);
  }
  return formatters.get(key);
}

/** Unix seconds -> "01 Dec 2026, 14:05" in ``tz``. */
export function dateTime(unix, tz) {
  unix = num(unix);
  if (unix === null) return "—";
  return formatter(tz, { dateStyle: "medium", timeStyle: "short" }).format(new Date(unix * 1000));
}

export function date(unix, tz) {
  unix = num(unix);
  if (unix === null) return "—";
  return formatter(tz, { dateStyle: "medium" }).format(new Date(unix * 1000));
}

/** Unix seconds -> "2026-12-01", the local day in ``tz`` (for grouping by day). */
export function dayKey(unix, tz) {
  const parts = formatter(tz, { year: "numeric", month: "2-digit", day: "2-digit" }).formatToParts(
    new Date(unix * 1000),
  );
  const get = (t) => parts.find((p) => p.type === t).value;
  return `${get("year")}-${get("month")}-${get("day")}`;
}

/** Seconds ago -> "3 min ago". */
export function ago(unix, now = Date.now() / 1000) {
  unix = num(unix);
  if (unix === null) return "never";
  const s = Math.max(0, Math.round(now - unix));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} days ago`;
}
