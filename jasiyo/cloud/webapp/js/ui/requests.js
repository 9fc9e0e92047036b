// Changes made from dashboards and what the POPs answered: pending until a
// request_result arrives, then "applied at POP x" or the POP's refusal.

import { fill, h } from "./dom.js";
import { dateTime, money } from "./format.js";

/** ``model`` (optional) supplies the currency a payment request does not carry: the subscriber's, else the tenant's. */
export function currencyFor(r, model) {
  return r.currency || model?.byUsername?.get(r.username)?.currency || model?.settings?.currency || "";
}

export function describe(r, model) {
  switch (r.action) {
    case "payment":
      return `cash payment ${money(r.amount_minor, currencyFor(r, model))} for ${r.username}`;
    case "allocate":
      return `allocate payment ${r.reference} to ${r.username}`;
    case "plan":
      return `change ${r.username} to plan ${r.plan}`;
    case "subscriber.add":
      return `add subscriber ${r.username} (plan ${r.plan}, router ${r.router})`;
    case "resume":
      return `resume ${r.username}`;
    case "suspend":
      return `suspend ${r.username}`;
    default:
      return `${r.action} ${r.username || ""}`;
  }
}

export function statusOf(r) {
  if (r.failed) return { cls: "refused", text: `not sent: ${r.failed}` };
  if (!r.result) return { cls: "pending", text: r.local ? "sent, waiting for the POP…" : "pending: waiting for the POP…" };
  if (r.result.status === "done") return { cls: "done", text: `done: applied at POP ${r.result.pop}${r.result.message ? ` — ${r.result.message}` : ""}` };
  return { cls: "refused", text: `refused by POP ${r.result.pop}: ${r.result.message}` };
}

export function requestList(requests, tz, model) {
  if (!requests.length) return h("p", { class: "muted" }, "None.");
  return h(
    "ul",
    { class: "requests" },
    requests.map((r) => {
      const st = statusOf(r);
      return h(
        "li",
        { class: `req ${st.cls}`, dataset: { request: r.key } },
        h("span", { class: "what" }, describe(r, model)),
        h("span", { class: `badge ${st.cls}` }, st.cls),
        h("small", { class: "req-status" }, st.text),
        h("small", { class: "muted" }, `${dateTime(r.at, tz)} by ${r.by || "?"}`),
      );
    }),
  );
}

export class RequestsView {
  constructor(app) {
    this.app = app;
  }

  mount(root) {
    this.box = h("div", { id: "requests" });
    fill(root, h("h2", {}, "Changes made from dashboards"), h("p", { class: "muted" }, "Each change is carried out by the subscriber's home POP; it shows here as pending until that POP answers."), this.box);
    this.update();
  }

  update() {
    const m = this.app.model;
    fill(this.box, requestList(this.app.allRequests().slice(0, 200), m.settings.timezone, m));
  }
}
