// The one error the core modules throw on purpose: its message is a sentence a person
// reads (the app shows it as is). `status` is the cloud's HTTP status when there was one.

export class DashError extends Error {
  constructor(message, { status = null, code = null, retryable = false } = {}) {
    super(message);
    this.name = "DashError";
    this.status = status;
    this.code = code;
    this.retryable = retryable;
  }
}
