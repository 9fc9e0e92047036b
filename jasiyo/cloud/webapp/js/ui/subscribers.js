// Subscribers: a search over every subscriber (50,000 stay quick: the filter is a
// substring test over a precomputed lower-case text, and only one page of rows is in the
// DOM), a detail panel, and the changes a dashboard can make.

import { debounce, fill, h } from "./dom.js";
import { date, dateTime, money, parseMoney } from "./format.js";
import { requestList } from "./requests.js";

const PAGE = 50;
const STATUSES = ["", "active", "expired", "suspended", "terminated"];

export class SubscribersView {
  constructor(app) {
    this.app = app;
    this.query = "";
    this.status = "";
    this.page = 0;
    this.selected = null;
    this.matches = [];
    this.key = null; // what the last filter ran over
  }

  mount(root) {
    this.search = h("input", {
      id: "search",
      type: "search",
      placeholder: "Search name, username, phone, plan…",
      "aria-label": "Search subscribers",
      autocomplete: "off",
      oninput: debounce(() => {
        this.query = this.search.value.trim().toLowerCase();
        this.page = 0;
        this.refresh(true);
      }, 150),
    });
    this.statusSel = h(
      "select",
      {
        id: "status-filter",
        "aria-label": "Status",
        onchange: () => {
          this.status = this.statusSel.value;
          this.page = 0;
          this.refresh(true);
        },
      },
      STATUSES.map((s) => h("option", { value: s }, s || "any status")),
    );
    this.count = h("p", { class: "muted", id: "sub-count" });
    this.list = h("div", { class: "list", id: "sub-list" });
    this.pager = h("div", { class: "pager" });
    this.detail = h("aside", { class: "detail", id: "detail", hidden: true });
    this.addBox = h("div", { id: "add-box" });
    fill(
      root,
      h("div", { class: "toolbar" }, this.search, this.statusSel, h("button", { type: "button", id: "add-open", onclick: () => this.openAdd() }, "Add subscriber")),
      this.addBox,
      h("div", { class: "split" }, h("section", { class: "main-col" }, this.count, this.list, this.pager), this.detail),
    );
    this.search.value = this.query;
    this.statusSel.value = this.status;
    this.key = null;
    this.refresh(true);
    if (this.selected) this.select(this.selected);
  }

  update() {
    this.refresh(false);
    if (this.selected) this.renderInfo();
  }

  filter() {
    const subs = this.app.model.subscribers;
    const key = `${this.query}|${this.status}`;
    if (this.key === key && this.source === subs) return;
    const q = this.query;
    const st = this.status;
    this.matches = !q && !st ? subs : subs.filter((s) => (!st || s.status === st) && (!q || s.search.includes(q)));
    this.key = key;
    this.source = subs;
  }

  refresh() {
    this.filter();
    const total = this.matches.length;
    const pages = Math.max(1, Math.ceil(total / PAGE));
    this.page = Math.min(this.page, pages - 1);
    const start = this.page * PAGE;
    const rows = this.matches.slice(start, start + PAGE);
    fill(
      this.count,
      total
        ? `${(start + 1).toLocaleString("en")}–${(start + rows.length).toLocaleString("en")} of ${total.toLocaleString("en")} subscribers`
        : this.app.model.subscribers.length
          ? "No subscriber matches."
          : "No subscribers yet.",
    );
    const tz = this.app.model.settings.timezone;
    fill(
      this.list,
      rows.map((s) =>
        h(
          "button",
          {
            type: "button",
            class: "row sub" + (s.username === this.selected ? " selected" : ""),
            dataset: { username: s.username },
            onclick: () => this.select(s.username),
          },
          h("span", { class: "who" }, h("strong", {}, s.name || s.username), s.name ? h("small", {}, s.username) : null),
          h("span", { class: `badge ${s.status}` }, s.status || "?"),
          h("span", { class: "plan" }, s.plan),
          h("span", { class: "num" + (s.balance < 0 ? " owe" : "") }, money(s.balance, s.currency)),
          h("span", { class: "paid" }, "paid to ", date(s.paidUntil, tz)),
          h("span", { class: "pop" }, s.homePop || "—"),
        ),
      ),
    );
    fill(
      this.pager,
      h("button", { type: "button", id: "prev", disabled: this.page === 0, onclick: () => this.go(-1) }, "‹ Previous"),
      h("span", {}, `page ${this.page + 1} of ${pages}`),
      h("button", { type: "button", id: "next", disabled: this.page >= pages - 1, onclick: () => this.go(1) }, "Next ›"),
    );
  }

  go(delta) {
    this.page += delta;
    this.refresh();
    this.list.scrollIntoView({ block: "start" });
  }

  select(username) {
    this.selected = username;
    for (const el of this.list.querySelectorAll(".row.selected")) el.classList.remove("selected");
    const row = this.list.querySelector(`[data-username="${CSS.escape(username)}"]`);
    if (row) row.classList.add("selected");
    this.info = h("div", { id: "detail-info" });
    this.reqs = h("div", { id: "detail-requests" });
    fill(
      this.detail,
      h("div", { class: "detail-head" }, h("h2", {}, username), h("button", { type: "button", class: "ghost", id: "detail-close", onclick: () => this.close() }, "Close")),
      this.info,
      this.actions(username),
      h("h3", {}, "Changes from dashboards"),
      this.reqs,
    );
    this.detail.hidden = false;
    this.renderInfo();
    this.detail.scrollIntoView({ block: "nearest" });
  }

  close() {
    this.selected = null;
    this.detail.hidden = true;
    fill(this.detail);
  }

  renderInfo() {
    const m = this.app.model;
    const s = m.byUsername.get(this.selected);
    if (!s) {
      fill(this.info, h("p", { class: "muted" }, "This subscriber is not in the folded state (removed?)."));
      return;
    }
    const tz = m.settings.timezone;
    const pays = m.payments.filter((p) => p.username === s.username).slice(0, 10);
    fill(
      this.info,
      h(
        "dl",
        { class: "facts" },
        fact("Name", s.name || "—"),
        fact("Status", h("span", { class: `badge ${s.status}`, id: "detail-status" }, s.status), s.reason ? ` (${s.reason})` : ""),
        fact("Plan", s.plan),
        fact("Balance", h("span", { id: "detail-balance" }, money(s.balance, s.currency))),
        fact("Paid through", dateTime(s.paidUntil, tz)),
        fact("Phone", s.phone || "—"),
        fact("Home POP", s.homePop ? `${s.homePop} (router ${s.homeRouter})` : "—"),
        fact("Service", s.service || "—"),
        s.ip ? fact("IP", s.ip) : null,
      ),
      h("h3", {}, "Recent payments"),
      pays.length
        ? h("ul", { class: "plain", id: "detail-payments" }, pays.map((p) => h("li", {}, `${dateTime(p.received_at, tz)} · ${p.method} · `, h("strong", {}, money(p.amount_minor, p.currency)), ` · ${p.reference}`)))
        : h("p", { class: "muted" }, "No payments."),
    );
    fill(this.reqs, requestList(m.requests.filter((r) => r.username === s.username), tz, m));
  }

  actions(username) {
    const app = this.app;
    const s = app.model.byUsername.get(username);
    const cur = s ? s.currency : app.model.settings.currency;
    const msg = h("p", { class: "form-msg", id: "action-msg", role: "status" });
    const run = (fn) => async () => {
      fill(msg);
      msg.className = "form-msg";
      try {
        fill(msg, await fn());
      } catch (err) {
        msg.className = "form-msg error";
        fill(msg, app.explain(err));
      }
    };
    const reason = h("input", { id: "suspend-reason", placeholder: "Reason (optional)", maxlength: 200 });
    const planSel = h("select", { id: "plan-select", "aria-label": "New plan" }, app.model.plans.map((p) => h("option", { value: p.name, selected: s && p.name === s.plan }, p.name)));
    const amount = h("input", { id: "cash-amount", inputmode: "decimal", placeholder: `Amount (${cur})`, autocomplete: "off" });
    const ref = h("input", { id: "cash-ref", placeholder: "Receipt no. (optional)", maxlength: 64, autocomplete: "off" });
    return h(
      "div",
      { class: "actions" },
      h("h3", {}, "Change"),
      h("div", { class: "action" }, reason, h("button", { type: "button", id: "act-suspend", class: "danger", onclick: run(() => app.writes.suspend(username, reason.value.trim() || null)) }, "Suspend")),
      h("div", { class: "action" }, h("button", { type: "button", id: "act-resume", onclick: run(() => app.writes.request("resume", { username })) }, "Resume")),
      h("div", { class: "action" }, planSel, h("button", { type: "button", id: "act-plan", onclick: run(() => app.writes.request("plan", { username, plan: planSel.value })) }, "Change plan")),
      h(
        "div",
        { class: "action" },
        amount,
        ref,
        h(
          "button",
          {
            type: "button",
            id: "act-pay",
            onclick: run(async () => {
              const fields = { username, amount_minor: parseMoney(amount.value, cur), method: "cash" };
              if (ref.value.trim()) fields.reference = ref.value.trim();
              const out = await app.writes.request("payment", fields);
              amount.value = "";
              ref.value = "";
              return out;
            }),
          },
          "Record cash payment",
        ),
      ),
      msg,
    );
  }

  openAdd() {
    const app = this.app;
    if (this.addBox.firstChild) {
      fill(this.addBox);
      return;
    }
    const field = (id, label, attrs = {}) => h("label", {}, label, h("input", { id, ...attrs }));
    const routers = app.model.routers || [];
    const msg = h("p", { class: "form-msg", role: "status" });
    const form = h(
      "form",
      {
        class: "card form-grid",
        id: "add-form",
        onsubmit: async (e) => {
          e.preventDefault();
          const v = (id) => form.querySelector(`#${id}`).value.trim();
          const fields = { username: v("new-username"), password: v("new-password"), plan: v("new-plan"), router: v("new-router") };
          for (const k of ["phone", "name", "ip"]) if (v(`new-${k}`)) fields[k] = v(`new-${k}`);
          if (v("new-service")) fields.service = v("new-service");
          msg.className = "form-msg";
          try {
            if (!fields.username || !fields.password) throw new Error("a username and a password are needed");
            fill(msg, await app.writes.request("subscriber.add", fields));
            form.reset();
          } catch (err) {
            msg.className = "form-msg error";
            fill(msg, app.explain(err));
          }
        },
      },
      h("h2", {}, "Add a subscriber"),
      field("new-username", "Username", { required: true, maxlength: 64, autocomplete: "off" }),
      field("new-password", "Password", { required: true, maxlength: 128, autocomplete: "new-password" }),
      h("label", {}, "Plan", h("select", { id: "new-plan" }, app.model.plans.map((p) => h("option", { value: p.name }, p.name)))),
      h("label", {}, "Router", h("select", { id: "new-router" }, routers.map((r) => h("option", { value: r }, r)))),
      field("new-name", "Name (optional)", { maxlength: 200 }),
      field("new-phone", "Phone (optional)", { inputmode: "tel", maxlength: 32 }),
      field("new-ip", "Static IP (optional)", { maxlength: 45 }),
      h("label", {}, "Service", h("select", { id: "new-service" }, ["", "pppoe", "hotspot", "static"].map((x) => h("option", { value: x }, x || "default")))),
      h("div", { class: "form-end" }, h("button", { type: "submit", id: "add-go" }, "Add"), h("button", { type: "button", class: "ghost", onclick: () => fill(this.addBox) }, "Cancel")),
      msg,
    );
    fill(this.addBox, form);
  }
}

function fact(label, ...value) {
  return [h("dt", {}, label), h("dd", {}, ...value)];
}
