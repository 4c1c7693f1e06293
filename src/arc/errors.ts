// One error class for everything wrong with ARC data (bad files, missing folders, failed downloads), so
// callers can tell a data problem (print the message, exit) from a bug (show the stack).
export class ArcDataError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ArcDataError";
  }
}

/** Task files that failed validation, every one of them (each message names the file and the reason). */
export class BadTaskFilesError extends ArcDataError {
  constructor(readonly messages: string[]) {
    super(messages.length === 1 ? messages[0] : `${messages.length} bad task files: ${messages.join("; ")}`);
    this.name = "BadTaskFilesError";
  }
}
