// The page's side of foldworker.js: each call a promise of the worker's answer.

export class FoldWorker {
  constructor() {
    this.worker = new Worker(new URL("./foldworker.js", import.meta.url), { type: "module" });
    this.next = 1;
    this.waiting = new Map();
    this.worker.onmessage = (e) => {
      const { id, ok, value, message, name } = e.data;
      const w = this.waiting.get(id);
      if (!w) return;
      this.waiting.delete(id);
      if (ok) w.resolve(value);
      else {
        const err = new Error(message || "the fold worker failed");
        if (name) err.name = name;
        w.reject(err);
      }
    };
    this.worker.onerror = (e) => {
      e.preventDefault();
      const err = new Error(`the fold worker stopped: ${e.message || "could not load"}`);
      for (const w of this.waiting.values()) w.reject(err);
      this.waiting.clear();
    };
  }

  call(op, args) {
    const id = this.next++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      this.worker.postMessage({ id, op, args });
    });
  }
}
