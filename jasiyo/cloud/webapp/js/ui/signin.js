// Signing in: the first time on a browser (admin token + recovery file or the cloud's
// wrapped copy, then enrolment of this browser as a dashboard), and unlocking afterwards
// (the passphrase opens the wrapped keyring cached in this browser).

import { Cloud } from "../core/api.js";
import { parseRecovery, unwrapKeyring, wrapKeyring } from "../core/keys.js";
import { generateIdentity } from "../core/signing.js";
import { uuid7 } from "../core/uuid7.js";
import * as cache from "../cache.js";
import { fill, h } from "./dom.js";

export const MIN_PASSPHRASE = 12;

/** The tenant id inside an admin token (``jad_<tenant>_<secret>``), or null. */
export function tenantOf(token) {
  const m = /^jad_([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})_[A-Za-z0-9_-]+$/.exec(token.trim());
  return m ? m[1] : null;
}

function readFile(file) {
  return new Promise((resolve, reject) => {
    const r = new FileReader();
    r.onload = () => resolve(String(r.result));
    r.onerror = () => reject(new Error("the file could not be read"));
    r.readAsText(file);
  });
}

function busy(button, text) {
  const old = button.textContent;
  button.disabled = true;
  button.textContent = text;
  return () => {
    button.disabled = false;
    button.textContent = old;
  };
}

/** The first-time form; resolves with ``{identity, recoveryText}`` once enrolled. */
export function signIn(root, explain) {
  return new Promise((resolve) => {
    const msg = h("p", { class: "form-msg", id: "signin-msg", role: "alert" });
    const token = h("input", { id: "admin-token", type: "password", autocomplete: "off", required: true, spellcheck: "false" });
    const name = h("input", { id: "dash-name", value: "dashboard", maxlength: 100, required: true });
    const file = h("input", { id: "recovery-file", type: "file", accept: ".json,application/json" });
    const pass1 = h("input", { id: "new-pass", type: "password", autocomplete: "new-password", minlength: MIN_PASSPHRASE });
    const pass2 = h("input", { id: "new-pass2", type: "password", autocomplete: "new-password", minlength: MIN_PASSPHRASE });
    const cloudPass = h("input", { id: "cloud-pass", type: "password", autocomplete: "current-password" });
    const viaFile = h("input", { type: "radio", name: "how", id: "how-file", value: "file", checked: true });
    const viaPass = h("input", { type: "radio", name: "how", id: "how-pass", value: "pass" });
    const fileBox = h(
      "fieldset",
      { id: "file-box" },
      h("legend", {}, "Recovery file"),
      h("label", {}, "The file from ", h("code", {}, "jasiyo tenant export-recovery"), file),
      h("label", {}, `Choose a passphrase (${MIN_PASSPHRASE} characters or more)`, pass1),
      h("label", {}, "The passphrase again", pass2),
      h("p", { class: "muted" }, "The keys are wrapped under this passphrase in this browser, and a copy is kept by the cloud (it cannot open it), so other staff browsers can sign in with the passphrase."),
    );
    const passBox = h(
      "fieldset",
      { id: "pass-box", hidden: true },
      h("legend", {}, "Passphrase"),
      h("label", {}, "The tenant's dashboard passphrase", cloudPass),
    );
    const toggle = () => {
      fileBox.hidden = !viaFile.checked;
      passBox.hidden = viaFile.checked;
    };
    viaFile.addEventListener("change", toggle);
    viaPass.addEventListener("change", toggle);
    const go = h("button", { type: "submit", id: "signin-go" }, "Sign in");
    const form = h(
      "form",
      {
        class: "card narrow",
        id: "signin",
        onsubmit: async (e) => {
          e.preventDefault();
          fill(msg);
          const done = busy(go, "Signing in…");
          try {
            resolve(await enrolBrowser());
          } catch (err) {
            msg.className = "form-msg error";
            fill(msg, explain(err));
          } finally {
            done();
          }
        },
      },
      h("h1", {}, "Sign in to the Jasiyo dashboard"),
      h("p", { class: "muted" }, "First time on this browser. Your keys never leave it unencrypted: the cloud stores only ciphertext."),
      h("label", {}, "Tenant admin token", token),
      h("label", {}, "A name for this browser (shown in the dashboards list)", name),
      h("div", { class: "choice" }, h("label", { class: "inline" }, viaFile, "I have the recovery file"), h("label", { class: "inline" }, viaPass, "I know the passphrase")),
      fileBox,
      passBox,
      go,
      msg,
    );

    async function enrolBrowser() {
      const admin = token.value.trim();
      const tenantId = tenantOf(admin);
      if (!tenantId) throw new Error("that is not a tenant admin token (it starts with jad_)");
      const dashName = name.value.trim();
      if (!dashName) throw new Error("give this browser a name");
      const cloud = new Cloud(location.origin, { tenantId });
      let recoveryText;
      let wrapped;
      if (viaFile.checked) {
        if (!file.files.length) throw new Error("choose the recovery file");
        recoveryText = await readFile(file.files[0]);
        const ring = await parseRecovery(recoveryText);
        if (ring.tenantId !== tenantId) throw new Error("this recovery file belongs to another tenant than the admin token");
        if (pass1.value.length < MIN_PASSPHRASE) throw new Error(`the passphrase needs ${MIN_PASSPHRASE} characters or more`);
        if (pass1.value !== pass2.value) throw new Error("the two passphrases differ");
        wrapped = await wrapKeyring(recoveryText, pass1.value, tenantId);
        await cloud.putWrapped(admin, wrapped);
      } else {
        wrapped = await cloud.getWrapped(admin);
        if (!wrapped) throw new Error("the cloud holds no wrapped keys for this tenant yet: sign in once with the recovery file");
        recoveryText = await unwrapKeyring(wrapped, cloudPass.value, tenantId);
      }
      const ident = await generateIdentity();
      const agentId = uuid7();
      const enrolment = await cloud.createEnrolment(admin);
      await cloud.enroll(enrolment.token, agentId, dashName, ident.publicKeyText);
      const identity = { tenantId, agentId, name: dashName, ...ident, enrolledAt: Date.now() / 1000 };
      await cache.put("identity", identity);
      await cache.put("wrapped", wrapped);
      return { identity, recoveryText };
    }

    fill(root, form);
    token.focus();
  });
}

/** The unlock form; resolves with the recovery text once the passphrase opens it. */
export function unlock(root, identity, explain, onForget) {
  return new Promise((resolve) => {
    const msg = h("p", { class: "form-msg", id: "unlock-msg", role: "alert" });
    const pass = h("input", { id: "passphrase", type: "password", autocomplete: "current-password", required: true });
    const go = h("button", { type: "submit", id: "unlock-go" }, "Unlock");
    const form = h(
      "form",
      {
        class: "card narrow",
        id: "unlock",
        onsubmit: async (e) => {
          e.preventDefault();
          fill(msg);
          const done = busy(go, "Unlocking…");
          try {
            const wrapped = await cache.get("wrapped");
            if (!wrapped) throw new Error("this browser no longer holds the wrapped keys: forget it and sign in again");
            resolve(await unwrapKeyring(wrapped, pass.value, identity.tenantId));
          } catch (err) {
            msg.className = "form-msg error";
            fill(msg, explain(err));
            pass.select();
          } finally {
            done();
          }
        },
      },
      h("h1", {}, "Unlock the dashboard"),
      h("p", { class: "muted" }, `${identity.name} · tenant ${identity.tenantId}`),
      h("label", {}, "Passphrase", pass),
      go,
      msg,
      h("p", {}, h("button", { type: "button", class: "ghost", id: "forget", onclick: onForget }, "Forget this browser")),
    );
    fill(root, form);
    pass.focus();
  });
}
