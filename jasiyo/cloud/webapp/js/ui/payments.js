// Payments, the revenue chart (hand-drawn SVG, by local day and by method) and the
// unmatched payments waiting in suspense.

import { fill, h, svg } from "./dom.js";
import { dateTime, money } from "./format.js";
import { revenue } from "./model.js";

const PAGE = 100;
const COLOURS = ["#2563eb", "#16a34a", "#d97706", "#9333ea", "#dc2626", "#0891b2"];

export class PaymentsView {
  constructor(app) {
    this.app = app;
    this.page = 0;
  }

  mount(root) {
    this.chart = h("div", { class: "card", id: "revenue" });
    this.list = h("div", { id: "payment-list" });
    fill(root, this.chart, h("h2", {}, "Payments"), this.list);
    this.update();
  }

  update() {
    const m = this.app.model;
    const { timezone: tz, currency } = m.settings;
    const rev = revenue(m.payments, tz);
    fill(this.chart, h("h2", {}, `Revenue, last 30 days (${tz})`), dayChart(rev.byDay, currency), methodChart(rev.byMethod, currency));
    const rows = m.payments.slice(this.page * PAGE, (this.page + 1) * PAGE);
    fill(
      this.list,
      h("p", { class: "muted" }, `${m.payments.length.toLocaleString("en")} payments`),
      rows.length
        ? h(
            "div",
            { class: "list" },
            rows.map((p) =>
              h(
                "div",
                { class: "row pay", dataset: { reference: p.reference } },
                h("span", { class: "who" }, h("strong", {}, p.username), h("small", {}, p.reference)),
                h("span", { class: "num" }, money(p.amount_minor, p.currency)),
                h("span", { class: "method" }, p.method),
                h("span", { class: "paid" }, dateTime(p.received_at, tz)),
              ),
            ),
          )
        : h("p", { class: "muted" }, "No payments yet."),
      h(
        "div",
        { class: "pager" },
        h("button", { type: "button", disabled: this.page === 0, onclick: () => { this.page--; this.update(); } }, "‹ Newer"),
        h("button", { type: "button", disabled: (this.page + 1) * PAGE >= m.payments.length, onclick: () => { this.page++; this.update(); } }, "Older ›"),
      ),
    );
  }
}

function dayChart(byDay, currency) {
  const W = 600;
  const H = 180;
  const pad = 24;
  const max = Math.max(1, ...byDay.map(([, v]) => v));
  const bw = (W - pad) / byDay.length;
  const bars = byDay.map(([day, v], i) => {
    const bh = Math.round(((H - pad) * v) / max);
    return svg(
      "rect",
      { x: pad + i * bw + 1, y: H - pad - bh, width: Math.max(1, bw - 2), height: bh, class: "bar" },
      svg("title", {}, `${day}: ${money(v, currency)}`),
    );
  });
  const labels = byDay
    .map(([day], i) => (i % 7 === byDay.length % 7 ? svg("text", { x: pad + i * bw, y: H - 6, class: "axis" }, day.slice(5)) : null))
    .filter(Boolean);
  const total = byDay.reduce((a, [, v]) => a + v, 0);
  return h(
    "figure",
    { class: "chart" },
    svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": "Revenue by day", id: "chart-day" }, svg("text", { x: pad, y: 12, class: "axis" }, `max ${money(max, currency)} a day`), bars, labels),
    h("figcaption", {}, `Total ${money(total, currency)}`),
  );
}

function methodChart(byMethod, currency) {
  const total = byMethod.reduce((a, [, v]) => a + v, 0);
  if (!total) return h("p", { class: "muted" }, "No payments in the last 30 days.");
  const W = 600;
  let x = 0;
  const parts = byMethod.map(([m, v], i) => {
    const w = (W * v) / total;
    const r = svg("rect", { x, y: 0, width: w, height: 24, fill: COLOURS[i % COLOURS.length] }, svg("title", {}, `${m}: ${money(v, currency)}`));
    x += w;
    return r;
  });
  return h(
    "figure",
    { class: "chart" },
    svg("svg", { viewBox: `0 0 ${W} 24`, role: "img", "aria-label": "Revenue by method", id: "chart-method" }, parts),
    h(
      "ul",
      { class: "legend" },
      byMethod.map(([m, v], i) => h("li", {}, h("span", { class: `swatch c${i % COLOURS.length}` }), `${m}: ${money(v, currency)}`)),
    ),
  );
}

export class SuspenseView {
  constructor(app) {
    this.app = app;
  }

  mount(root) {
    this.box = h("div", { id: "suspense" });
    this.sig = null; // a new box: draw it whatever was drawn before
    fill(root, h("h2", {}, "Unmatched payments"), h("p", { class: "muted" }, "Money that arrived without an account we know. Allocate it to a subscriber: their home POP applies it."), this.box);
    this.update();
  }

  update() {
    const app = this.app;
    const m = app.model;
    const tz = m.settings.timezone;
    if (!m.suspense.length) {
      fill(this.box, h("p", { class: "muted" }, "Nothing unmatched."));
      return;
    }
    // Keep what someone is typing: only rebuild when the set of entries changed.
    const sig = m.suspense.map((s) => `${s.key}:${s.status}`).join(",");
    if (sig === this.sig) return;
    this.sig = sig;
    fill(
      this.box,
      h(
        "div",
        { class: "list" },
        m.suspense.map((s) => {
          const user = h("input", { placeholder: "username", "aria-label": `Username for ${s.reference}`, class: "alloc-user", autocomplete: "off" });
          const msg = h("small", { class: "form-msg", role: "status" });
          return h(
            "div",
            { class: `row suspense ${s.status}`, dataset: { reference: s.reference || s.key } },
            h("span", { class: "who" }, h("strong", {}, s.reference || s.key), h("small", {}, `${s.provider || ""} · account "${s.account || ""}"${s.phone ? ` · ${s.phone}` : ""}`)),
            h("span", { class: "num" }, money(s.amount_minor, s.currency)),
            h("span", { class: `badge ${s.status}` }, s.status === "allocated" ? `allocated to ${s.allocated_to}` : s.status),
            h("span", { class: "paid" }, dateTime(s.received_at, tz), s.reason ? ` · ${s.reason}` : ""),
            s.status === "open"
              ? h(
                  "span",
                  { class: "action" },
                  user,
                  h(
                    "button",
                    {
                      type: "button",
                      class: "alloc-go",
                      onclick: async () => {
                        msg.className = "form-msg";
                        try {
                          const name = user.value.trim();
                          if (!m.byUsername.has(name)) throw new Error(`no subscriber named "${name}"`);
                          fill(msg, await app.writes.request("allocate", { reference: s.reference || s.key, username: name }));
                        } catch (err) {
                          msg.className = "form-msg error";
                          fill(msg, app.explain(err));
                        }
                      },
                    },
                    "Allocate",
                  ),
                  msg,
                )
              : null,
          );
        }),
      ),
    );
  }
}
