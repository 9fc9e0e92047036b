// Plans, POPs (last contact and backlog from the cloud's agent list, joined with the pop
// entity the POPs publish), vouchers, SMS (per-POP outbox counts and consent).

import { fill, h, table } from "./dom.js";
import { ago, dateTime, money } from "./format.js";

const PAGE = 100;

export class PlansView {
  constructor(app) {
    this.app = app;
  }

  mount(root) {
    this.box = h("div", { id: "plans" });
    fill(root, h("h2", {}, "Plans"), this.box);
    this.update();
  }

  update() {
    const m = this.app.model;
    const counts = new Map();
    for (const s of m.subscribers) counts.set(s.plan, (counts.get(s.plan) || 0) + 1);
    fill(
      this.box,
      m.plans.length
        ? table(
            ["Plan", "Price", "Period", "Rate", "Billing", "Subscribers"],
            m.plans.map((p) => [
              h("strong", {}, p.name),
              money(p.price_minor, p.currency),
              p.period || "—",
              p.rate || "—",
              p.billing || "—",
              (counts.get(p.name) || 0).toLocaleString("en"),
            ]),
          )
        : h("p", { class: "muted" }, "No plans yet."),
    );
  }
}

export class PopsView {
  constructor(app) {
    this.app = app;
  }

  mount(root) {
    this.box = h("div", { id: "pops" });
    this.dash = h("div", { id: "dashboards" });
    fill(root, h("h2", {}, "POPs"), this.box, h("h2", {}, "Dashboards"), this.dash);
    this.update();
  }

  update() {
    const app = this.app;
    const m = app.model;
    const agents = app.agents ? app.agents.agents : [];
    const now = app.agents ? app.agents.now : Date.now() / 1000;
    const byId = new Map(agents.map((a) => [a.agent_id, a]));
    const byName = new Map(agents.map((a) => [a.name, a]));
    const subsAt = new Map();
    for (const s of m.subscribers) subsAt.set(s.homePop, (subsAt.get(s.homePop) || 0) + 1);
    const rows = m.pops.map((p) => {
      const a = byId.get(p.agent_id) || byName.get(p.name);
      return [
        h("strong", {}, p.name),
        p.retired ? h("span", { class: "badge suspended" }, `retired → ${p.retired_to || "?"}`) : h("span", { class: "badge active" }, a && a.revoked_at ? "revoked" : "in service"),
        a ? ago(a.last_seen, now) : "unknown",
        a ? (a.backlog ?? 0).toLocaleString("en") + " events" : "—",
        p.timezone || "—",
        p.version || "—",
        (subsAt.get(p.name) || 0).toLocaleString("en"),
      ];
    });
    fill(
      this.box,
      rows.length
        ? table(["POP", "State", "Last contact", "Backlog", "Time zone", "Version", "Home of"], rows)
        : h("p", { class: "muted" }, "No POP has published itself yet."),
      app.agentsError ? h("p", { class: "form-msg error" }, app.agentsError) : null,
    );
    const dashboards = agents.filter((a) => a.kind === "dashboard");
    fill(
      this.dash,
      dashboards.length
        ? table(
            ["Name", "Enrolled", "Last seen", "State"],
            dashboards.map((a) => [
              a.agent_id === app.identity.agentId ? h("strong", {}, `${a.name} (this browser)`) : a.name,
              dateTime(a.created_at, m.settings.timezone),
              ago(a.last_seen, now),
              a.revoked_at ? "revoked" : "active",
            ]),
          )
        : h("p", { class: "muted" }, "—"),
      h("p", { class: "muted" }, "Revoke a dashboard with ", h("code", {}, "jasiyo cloud revoke-agent"), " (see docs/dashboard.md)."),
    );
  }
}

export class VouchersView {
  constructor(app) {
    this.app = app;
    this.page = 0;
  }

  mount(root) {
    this.box = h("div", { id: "vouchers" });
    fill(root, h("h2", {}, "Vouchers"), this.box);
    this.update();
  }

  update() {
    const m = this.app.model;
    const tz = m.settings.timezone;
    const counts = {};
    for (const v of m.vouchers) counts[v.status] = (counts[v.status] || 0) + 1;
    const rows = m.vouchers.slice(this.page * PAGE, (this.page + 1) * PAGE);
    fill(
      this.box,
      h("p", { class: "muted" }, Object.entries(counts).map(([k, n]) => `${n.toLocaleString("en")} ${k}`).join(" · ") || "No vouchers yet."),
      rows.length
        ? table(
            ["Code", "Plan", "Status", "Batch", "First used", "Ends"],
            rows.map((v) => [h("code", {}, v.code), v.plan || "—", v.status || "—", v.batch || "—", v.use ? dateTime(v.use.at ?? v.use.started_at, tz) : "—", dateTime(v.ends_at, tz)]),
          )
        : null,
      m.vouchers.length > PAGE
        ? h(
            "div",
            { class: "pager" },
            h("button", { type: "button", disabled: this.page === 0, onclick: () => { this.page--; this.update(); } }, "‹ Previous"),
            h("button", { type: "button", disabled: (this.page + 1) * PAGE >= m.vouchers.length, onclick: () => { this.page++; this.update(); } }, "Next ›"),
          )
        : null,
    );
  }
}

export class SmsView {
  constructor(app) {
    this.app = app;
  }

  mount(root) {
    this.box = h("div", { id: "sms" });
    fill(root, h("h2", {}, "SMS"), this.box);
    this.update();
  }

  update() {
    const m = this.app.model;
    const rows = m.pops
      .filter((p) => p.sms && typeof p.sms === "object")
      .map((p) => [p.name, String(p.sms.queued ?? 0), String(p.sms.sent ?? 0), String(p.sms.failed ?? 0)]);
    let yes = 0;
    let no = 0;
    for (const s of m.subscribers) {
      if (s.smsConsent === true || s.smsConsent === 1) yes++;
      else if (s.smsConsent === false || s.smsConsent === 0) no++;
    }
    fill(
      this.box,
      h("h3", {}, "Outbox today, per POP"),
      rows.length ? table(["POP", "Queued", "Sent", "Failed"], rows) : h("p", { class: "muted" }, "No POP has published SMS counts yet."),
      h("h3", {}, "Consent"),
      h("p", { id: "consent" }, `${yes.toLocaleString("en")} subscribers agreed to SMS, ${no.toLocaleString("en")} declined, ${(m.subscribers.length - yes - no).toLocaleString("en")} not asked.`),
      h("p", { class: "muted" }, `${m.consent.length.toLocaleString("en")} consent changes recorded.`),
    );
  }
}
