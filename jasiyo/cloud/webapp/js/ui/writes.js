// The changes a dashboard makes, sealed as the same events an agent would write.
// Suspend is a direct subscriber upsert (every POP folds it; the home POP enforces);
// everything that needs billing logic is a ``request`` the home POP executes, answered by
// a ``request_result`` (see docs/dashboard.md).

import { uuid7 } from "../core/uuid7.js";
import { describe } from "./requests.js";

export class Writes {
  constructor(app) {
    this.app = app;
    /** Requests sent from this browser that the fold has not shown yet, by key. */
    this.local = new Map();
  }

  async suspend(username, reason) {
    const sub = this.app.model.byUsername.get(username);
    if (!sub) throw new Error(`no subscriber named "${username}"`);
    if (sub.status === "terminated") throw new Error(`${username} is terminated; it cannot be suspended`);
    if (sub.status === "suspended" && sub.manual) throw new Error(`${username} is already suspended by hand`);
    // Exactly what jasiyo.agent.subscribers.suspend emits.
    await this.app.emit("subscriber", username, "upsert", {
      status: "suspended",
      status_reason: reason || "manual",
      manual_suspend: 1,
    });
    return `Suspended ${username}. Each POP refuses full service as soon as it syncs.`;
  }

  async request(action, fields) {
    const key = uuid7();
    const data = { action, by: this.app.identity.name, at: Math.floor(Date.now() / 1000), ...fields };
    const local = { key, ...data, local: true, result: null };
    this.local.set(key, local);
    try {
      await this.app.emit("request", key, "append", data);
    } catch (err) {
      local.failed = this.app.explain(err);
      this.app.refreshViews();
      throw err;
    }
    this.app.refreshViews();
    return `Sent: ${describe(data, this.app.model)}. Pending until the POP answers.`;
  }
}
