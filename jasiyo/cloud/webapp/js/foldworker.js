// The folded state, kept in a module Worker so the page answers input while it is restored
// (decrypt the sealed cache, gunzip, parse: seconds at 50,000 subscribers), folded,
// sealed again, and turned into the views' model. The page posts opened events here and
// gets the model back by structured clone; nothing here talks to the cloud.

import * as cache from "./cache.js";
import { Fold } from "./core/fold.js";
import { buildModel } from "./ui/model.js";

let fold = new Fold();

const ops = {
  /** The sealed cache, restored: the page's bookkeeping, or null (start afresh). */
  async restore({ recoveryText, tenantId, agentId }) {
    const stored = await cache.loadState(recoveryText, tenantId, agentId);
    const restored = stored && Fold.fromJSON(stored.fold); // null: folded under other rules
    fold = restored || new Fold();
    if (!restored) return null;
    return { cursor: stored.cursor, hlc: stored.hlc, keys: stored.keys || {}, refused: stored.refused || [] };
  },
  reset() {
    fold = new Fold();
  },
  apply({ events }) {
    fold.apply(events);
  },
  model({ myName }) {
    const state = fold.state();
    const model = buildModel(state, myName);
    model.routers = Object.keys(state.router || {}).sort();
    return model;
  },
  async save({ recoveryText, tenantId, agentId, extra, view }) {
    await cache.saveState(recoveryText, tenantId, agentId, { fold: fold.toJSON(), ...extra });
    if (view) await cache.saveState(recoveryText, tenantId, agentId, view, "view");
  },
};

// One message at a time, in order: an apply posted after a restore waits for it.
let queue = Promise.resolve();
self.onmessage = (e) => {
  const { id, op, args } = e.data;
  queue = queue.then(async () => {
    try {
      self.postMessage({ id, ok: true, value: await ops[op](args || {}) });
    } catch (err) {
      self.postMessage({ id, ok: false, message: (err && err.message) || String(err), name: err && err.name });
    }
  });
};
