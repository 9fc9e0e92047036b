// The tenant dashboard: sign in or unlock, show the cached state at once, then catch up
// with the cloud by long-poll, opening and folding events in this browser only.

import { Cloud } from "./core/api.js";
import { DashError } from "./core/errors.js";
import { Clock } from "./core/hlc.js";
import { parseRecovery } from "./core/keys.js";
import { loadSnapshot, openEvents, sealEvent } from "./core/sync.js";
import * as cache from "./cache.js";
import { FoldWorker } from "./foldclient.js";
import { fill, h } from "./ui/dom.js";
import { modelFromView, viewOf } from "./ui/model.js";
import { SubscribersView } from "./ui/subscribers.js";
import { PaymentsView, SuspenseView } from "./ui/payments.js";
import { PlansView, PopsView, SmsView, VouchersView } from "./ui/others.js";
import { RequestsView } from "./ui/requests.js";
import { signIn, unlock } from "./ui/signin.js";
import { Writes } from "./ui/writes.js";

const PULL_LIMIT = 1000;
const LONG_POLL = 25;
// Sealing the cache is seconds of work at 50,000 subscribers (JSON, gzip, AES, IndexedDB):
// done once a first catch-up ends, then after many new events or every 10 minutes with
// changes, and when the page is hidden. Lock does not wait for it unless there is no
// cache yet: a reopen pulls what the cache lacks from the cloud.
const SAVE_EVERY_MS = 10 * 60 * 1000;
const SAVE_AFTER_EVENTS = 20000;
const REBUILD_EVERY_MS = 1500;
const AGENTS_EVERY_MS = 30000;

const VIEWS = [
  ["subscribers", "Subscribers", SubscribersView],
  ["plans", "Plans", PlansView],
  ["payments", "Payments", PaymentsView],
  ["suspense", "Unmatched", SuspenseView],
  ["pops", "POPs", PopsView],
  ["vouchers", "Vouchers", VouchersView],
  ["sms", "SMS", SmsView],
  ["changes", "Changes", RequestsView],
];

/** Any error as one sentence a person reads (never a stack trace). */
export function explain(err) {
  if (err instanceof DashError) return err.message;
  if (err && err.name === "OperationError") return "wrong passphrase, or the data was tampered with";
  if (err instanceof TypeError && /fetch|network/i.test(err.message)) return "cannot reach the cloud (offline?)";
  if (err && typeof err.message === "string" && err.message) return err.message;
  return "something went wrong: " + String(err);
}

function revokedError(err) {
  return err instanceof DashError && (err.status === 401 || /revoked|not enrolled/i.test(err.message));
}

class App {
  constructor(root, identity, recoveryText) {
    this.root = root;
    this.identity = identity;
    this.recoveryText = recoveryText;
    this.tenantId = identity.tenantId;
    this.explain = explain;
    this.writes = new Writes(this);
    this.refused = new Map(); // event id -> message (events that would not open)
    this.agents = null;
    this.agentsError = null;
    this.stopped = false;
    this.dirty = false;
    this.lastSave = Date.now();
    this.unsaved = 0; // events folded since the cache was last sealed
    this.hasCache = false;
    this.saving = null; // the save under way, if any
    this.lastBuild = 0;
    this.views = new Map();
    this.current = null;
  }

  async start() {
    this.keyring = await parseRecovery(this.recoveryText);
    if (this.keyring.tenantId !== this.tenantId) throw new DashError("these keys belong to another tenant");
    this.cloud = new Cloud(location.origin, { tenantId: this.tenantId, agentId: this.identity.agentId, identity: this.identity });
    this.clock = new Clock(this.identity.agentId);
    const t0 = performance.now();
    // The small cached view first: a usable subscriber list while the fold is restored.
    const view = await cache.loadState(this.recoveryText, this.tenantId, this.identity.agentId, "view");
    const t1 = performance.now();
    this.renderShell();
    if (view) {
      this.model = modelFromView(view);
      this.setStatus("opening the cache…", "busy");
      this.show(location.hash.slice(1) || "subscribers");
    }
    const t2 = performance.now();
    // The whole fold is restored in a Worker: the list from the view cache answers input
    // (search, paging) meanwhile.
    this.folder = new FoldWorker();
    const cached = await this.folder.call("restore", {
      recoveryText: this.recoveryText,
      tenantId: this.tenantId,
      agentId: this.identity.agentId,
    });
    if (cached) {
      this.hasCache = true;
      this.cursor = cached.cursor;
      this.head = null; // not known until the first pull (which therefore does not wait)
      if (cached.hlc) this.clock.observe(cached.hlc);
      for (const [kid, raw] of Object.entries(cached.keys || {})) await this.keyring.add(kid, raw);
      for (const [id, m] of cached.refused || []) this.refused.set(id, m);
    } else {
      this.cursor = 0;
      this.head = null;
    }
    this.lastHlc = cached ? cached.hlc : null;
    this.restored = true;
    await this.rebuild();
    if (view) this.refreshViews();
    else this.show(location.hash.slice(1) || "subscribers");
    this.showAlert();
    // How the opening went, for bench/dashboard.py (ms): the view cache read and opened,
    // the list shown from it, then the whole fold restored and shown.
    this.status.dataset.open = [t1 - t0, t2 - t1, performance.now() - t2].map(Math.round).join(" ");
    window.addEventListener("hashchange", () => this.show(location.hash.slice(1)));
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "hidden" && (this.unsaved || !this.hasCache)) this.save();
    });
    this.loop();
    this.pollAgents();
  }

  renderShell() {
    this.status = h("span", { id: "sync-status", class: "sync", role: "status" }, "starting…");
    this.alert = h("div", { id: "alert", class: "alert", role: "alert", hidden: true });
    this.nav = h(
      "nav",
      { class: "tabs", "aria-label": "Views" },
      VIEWS.map(([id, label]) => h("a", { href: `#${id}`, id: `tab-${id}`, dataset: { view: id } }, label)),
    );
    this.main = h("main", { id: "view" });
    fill(
      this.root,
      h(
        "header",
        { class: "top" },
        h("div", { class: "brand" }, h("strong", {}, "Jasiyo"), h("small", { id: "who" }, this.identity.name)),
        this.status,
        h("button", { type: "button", id: "lock", class: "ghost", onclick: () => this.lock() }, "Lock"),
      ),
      this.nav,
      this.alert,
      this.main,
    );
  }

  show(id) {
    const entry = VIEWS.find(([v]) => v === id) || VIEWS[0];
    const [name, , Cls] = entry;
    if (!this.views.has(name)) this.views.set(name, new Cls(this));
    this.current = this.views.get(name);
    for (const a of this.nav.querySelectorAll("a")) a.classList.toggle("on", a.dataset.view === name);
    this.current.mount(this.main);
  }

  async rebuild() {
    this.model = await this.folder.call("model", { myName: this.identity.name });
    this.lastBuild = Date.now();
    this.dirty = false;
  }

  refreshViews() {
    if (this.current) this.current.update();
  }

  allRequests() {
    const known = new Set(this.model.requests.map((r) => r.key));
    for (const key of this.writes.local.keys()) if (known.has(key)) this.writes.local.delete(key);
    return [...this.writes.local.values(), ...this.model.requests];
  }

  setStatus(text, cls = "") {
    fill(this.status, text);
    this.status.className = `sync ${cls}`;
  }

  showAlert() {
    if (!this.refused.size) {
      this.alert.hidden = true;
      return;
    }
    this.alert.hidden = false;
    fill(
      this.alert,
      h("strong", {}, `${this.refused.size} event(s) refused: `),
      [...this.refused.values()].slice(0, 3).join("; "),
      this.refused.size > 3 ? " …" : "",
      h("br"),
      "They are not shown. The rest of the log is.",
    );
  }

  /** Open a batch; an event that fails authentication is refused alone (never folded,
   * its reason shown), the rest apply. */
  async open(raw) {
    const out = await openEvents(this.keyring, this.tenantId, raw);
    for (const r of out.refused || []) this.refused.set(r.id, r.message);
    return out;
  }

  async loop() {
    let backoff = 1000;
    while (!this.stopped) {
      try {
        const caughtUp = this.head !== null && this.cursor >= this.head;
        const page = await this.cloud.pull(this.cursor, { limit: PULL_LIMIT, wait: caughtUp ? LONG_POLL : 0 });
        if (this.stopped) return;
        if (this.cursor < page.floor) {
          this.setStatus("loading the snapshot…", "busy");
          const snap = await loadSnapshot(this.cloud, this.keyring, this.tenantId);
          if (!snap) throw new DashError("the cloud compacted its log but holds no snapshot to start from");
          await this.folder.call("reset");
          await this.folder.call("apply", { events: snap.events });
          this.unsaved += snap.events.length;
          this.cursor = snap.seq;
          this.head = Math.max(snap.seq, page.head);
          this.dirty = true;
          continue;
        }
        const events = await this.open(page.events);
        if (events.learned) this.dirty = true; // a rotated key: the cache must keep it
        if (events.length) {
          await this.folder.call("apply", { events: [...events] });
          this.unsaved += events.length;
          for (const e of events) if (!this.lastHlc || e.hlc > this.lastHlc) this.lastHlc = e.hlc;
          this.dirty = true;
        }
        if (page.events.length) this.showAlert();
        this.cursor = page.cursor;
        this.head = page.head;
        const done = this.cursor >= this.head;
        if (this.dirty && (done || Date.now() - this.lastBuild > REBUILD_EVERY_MS)) {
          await this.rebuild();
          this.refreshViews();
        }
        this.setStatus(
          done ? "up to date" : `catching up: ${this.cursor.toLocaleString("en")} of ${this.head.toLocaleString("en")}`,
          done ? "ok" : "busy",
        );
        if (done && this.saveDue()) await this.save();
        backoff = 1000;
      } catch (err) {
        if (this.stopped) return;
        if (revokedError(err)) return this.revoked(err);
        this.setStatus(`${explain(err)} — retrying`, "error");
        await new Promise((r) => setTimeout(r, backoff));
        backoff = Math.min(backoff * 2, 30000);
      }
    }
  }

  async pollAgents() {
    while (!this.stopped) {
      try {
        this.agents = await this.cloud.agents();
        this.agentsError = null;
      } catch (err) {
        if (revokedError(err)) return;
        this.agentsError = `POP contact unknown: ${explain(err)}`;
      }
      if (this.current instanceof PopsView) this.current.update();
      await new Promise((r) => setTimeout(r, AGENTS_EVERY_MS));
    }
  }

  /** Seal one event as this dashboard, push it, and fold it here at once. */
  async emit(entity, key, op, data) {
    if (!this.restored) throw new DashError("the dashboard is still opening its cache; try again in a moment");
    const ev = await sealEvent(this.keyring, this.tenantId, this.clock, this.identity.agentId, entity, key, op, data);
    await this.cloud.push([{ id: ev.id, origin: ev.origin, envelope: ev.envelope }]); // never the plain event
    await this.folder.call("apply", { events: [ev.event] });
    this.unsaved += 1;
    await this.rebuild();
    this.refreshViews();
  }

  saveDue() {
    if (!this.hasCache) return true;
    return this.unsaved >= SAVE_AFTER_EVENTS || (this.unsaved > 0 && Date.now() - this.lastSave > SAVE_EVERY_MS);
  }

  /** Seal the cache; a call while a save runs waits for that one (the page answers input
   * meanwhile, so Lock can come before a first save ends). */
  save() {
    if (!this.saving) this.saving = this.sealCache().finally(() => (this.saving = null));
    return this.saving;
  }

  async sealCache() {
    if (!this.restored || !this.model) return;
    this.lastSave = Date.now();
    const unsaved = this.unsaved;
    const t = performance.now();
    try {
      // Sealed in the worker, which holds the fold: the page stays responsive meanwhile.
      await this.folder.call("save", {
        recoveryText: this.recoveryText,
        tenantId: this.tenantId,
        agentId: this.identity.agentId,
        extra: {
          cursor: this.cursor,
          hlc: this.lastHlc,
          keys: this.keyring.toRecovery().keys, // rotated keys learned from the log
          refused: [...this.refused.entries()],
        },
        view: this.model && !this.model.partial ? viewOf(this.model) : null,
      });
      this.hasCache = true;
      this.unsaved -= unsaved;
      this.status.dataset.saveMs = String(Math.round(performance.now() - t));
    } catch (err) {
      this.setStatus(`could not cache the state: ${explain(err)}`, "error");
    }
  }

  async lock() {
    this.stopped = true;
    this.setStatus("locking…", "busy");
    if (this.saving) await this.saving;
    if (!this.hasCache || this.unsaved >= SAVE_AFTER_EVENTS) await this.save();
    location.reload(); // a fresh page holds no key, no state, no passphrase
  }

  revoked(err) {
    this.stopped = true;
    fill(
      this.root,
      h(
        "div",
        { class: "card narrow", id: "revoked" },
        h("h1", {}, "This dashboard cannot sign in"),
        h("p", { class: "form-msg error" }, explain(err)),
        h("p", {}, "An administrator revoked it, or the cloud no longer knows it. Forget this browser, then sign in again."),
        h("button", { type: "button", id: "forget", onclick: forget }, "Forget this browser"),
      ),
    );
  }
}

async function forget() {
  await cache.wipe();
  location.reload();
}

function fatal(root, err) {
  fill(root, h("div", { class: "card narrow", id: "fatal" }, h("h1", {}, "The dashboard could not start"), h("p", { class: "form-msg error" }, explain(err))));
}

async function main() {
  const root = document.getElementById("app");
  window.addEventListener("unhandledrejection", (e) => {
    e.preventDefault();
    const box = document.getElementById("alert");
    if (box) {
      box.hidden = false;
      fill(box, explain(e.reason));
    }
  });
  try {
    let identity = await cache.get("identity");
    let recoveryText;
    if (!identity) ({ identity, recoveryText } = await signIn(root, explain));
    else recoveryText = await unlock(root, identity, explain, forget);
    const app = new App(root, identity, recoveryText);
    window.jasiyoDashboard = app; // for the bench's timing, and a curious engineer's console
    await app.start();
  } catch (err) {
    fatal(root, err);
  }
}

main();
