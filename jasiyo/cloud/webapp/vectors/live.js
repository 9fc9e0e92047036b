// The core modules against a real cloud (tests/dashboard/test_core_browser.py): enrol
// this browser as a dashboard, pull and open the tenant's events, fold them, seal a
// suspension and push it. Parameters in the URL's fragment (never sent to a server):
// #tenant=..&admin=..&recovery=<b64url of the recovery file>&user=<username to suspend>.
// The outcome goes to #result as JSON, with data-done set.

import { b64urlDecode, utf8 } from "../js/core/b64.js";
import { Cloud } from "../js/core/api.js";
import { DashError } from "../js/core/errors.js";
import { Fold } from "../js/core/fold.js";
import { Clock } from "../js/core/hlc.js";
import { parseRecovery, unwrapKeyring, wrapKeyring } from "../js/core/keys.js";
import { generateIdentity } from "../js/core/signing.js";
import { openEvents, sealEvent } from "../js/core/sync.js";
import { uuid7 } from "../js/core/uuid7.js";

function report(doc) {
  const out = document.getElementById("result");
  out.textContent = JSON.stringify(doc);
  out.dataset.done = "1";
  document.getElementById("summary").textContent = doc.error ? `failed: ${doc.error}` : "done";
}

async function pullAll(cloud, ring, tenantId, fold, clock) {
  let after = 0;
  const refused = [];
  for (;;) {
    const doc = await cloud.pull(after, { limit: 500, wait: 0 });
    const events = await openEvents(ring, tenantId, doc.events);
    refused.push(...events.refused);
    for (const ev of events) clock.observe(ev.hlc);
    fold.apply(events);
    after = doc.cursor;
    if (after >= doc.head || doc.events.length === 0) return { cursor: after, refused };
  }
}

async function main() {
  const p = new URLSearchParams(location.hash.slice(1));
  const tenantId = p.get("tenant");
  const ring = await parseRecovery(utf8.decode(b64urlDecode(p.get("recovery"))));
  const user = p.get("user");
  const out = { tenantId };

  // Not enrolled: a clear refusal, not a crash.
  const stranger = new Cloud(location.origin, { tenantId, agentId: uuid7(), identity: await generateIdentity() });
  try {
    await stranger.pull(0);
    out.stranger = "accepted";
  } catch (exc) {
    out.stranger = exc instanceof DashError ? exc.message : `not a DashError: ${exc}`;
  }

  const identity = await generateIdentity();
  const agentId = uuid7();
  const admin = new Cloud(location.origin, { tenantId });
  const enrolment = await admin.createEnrolment(p.get("admin"));
  out.enrolled = await admin.enroll(enrolment.token, agentId, "front desk", identity.publicKeyText);
  try {
    await admin.enroll(enrolment.token, uuid7(), "again", identity.publicKeyText);
    out.reused = "accepted";
  } catch (exc) {
    out.reused = exc.message;
  }

  // The keyring wrapped under a passphrase, stored in the cloud and unwrapped again.
  const adminToken = p.get("admin");
  out.wrappedBefore = await admin.getWrapped(adminToken);
  const recoveryText = ring.toRecoveryText();
  await admin.putWrapped(adminToken, await wrapKeyring(recoveryText, "correct horse battery staple", tenantId));
  const stored = await admin.getWrapped(adminToken);
  out.wrappedIterations = stored.iterations;
  try {
    await unwrapKeyring(stored, "correct horse battery stapler", tenantId);
    out.wrongPassphrase = "unlocked";
  } catch (exc) {
    out.wrongPassphrase = exc.message;
  }
  const unlocked = await parseRecovery(await unwrapKeyring(stored, "correct horse battery staple", tenantId));
  out.unlocked = { tenantId: unlocked.tenantId, kids: [...unlocked.keys.keys()].sort(), same: [...ring.keys.keys()].sort() };

  const cloud = new Cloud(location.origin, { tenantId, agentId, identity });
  const fold = new Fold();
  const clock = new Clock(agentId);
  const pulled = await pullAll(cloud, ring, tenantId, fold, clock);
  const state = fold.state();
  out.before = { subscriber: state.subscriber[user] || null, payments: Object.values(state.payment), cursor: pulled.cursor };
  out.refused = pulled.refused;

  const data = { manual_suspend: 1, status: "suspended", status_reason: "manual" };
  const sealed = await sealEvent(ring, tenantId, clock, agentId, "subscriber", user, "upsert", data);
  fold.apply([sealed.event]);
  out.pushed = await cloud.push([{ id: sealed.id, origin: sealed.origin, envelope: sealed.envelope }]);
  out.after = fold.state().subscriber[user] || null;
  out.snapshot = await cloud.snapshot();
  const listed = await cloud.agents();
  out.agents = listed.agents.map((a) => ({ agent_id: a.agent_id, name: a.name, kind: a.kind }));
  out.me = agentId;
  report(out);
}

main().catch((exc) => report({ error: String((exc && exc.message) || exc), stack: String(exc && exc.stack) }));
