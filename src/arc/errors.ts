// One error class for everything wrong with ARC data (bad files, missing folders, failed downloads), so
// callers can tell a data problem (print the message, exit) from a bug (show the stack).
export class ArcDataError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ArcDataError";
  }
}
