// Lines of a child process's stream as they arrive, for tests that drive subprocesses.

/** Lines of a child's stdout, with a way to wait for the next line starting with a prefix. */
export function lineWatcher(stream: ReadableStream<Uint8Array>) {
  const lines: string[] = [];
  let waiters: { prefix: string; from: number; resolve: (l: string | null) => void }[] = [];
  let done = false;
  const check = () => {
    waiters = waiters.filter((w) => {
      const hit = lines.slice(w.from).find((l) => l.startsWith(w.prefix));
      if (hit !== undefined) w.resolve(hit);
      else if (done) w.resolve(null);
      return hit === undefined && !done;
    });
  };
  (async () => {
    const dec = new TextDecoder();
    let buf = "";
    for await (const chunk of stream) {
      buf += dec.decode(chunk, { stream: true });
      let i: number;
      while ((i = buf.indexOf("\n")) >= 0) {
        lines.push(buf.slice(0, i));
        buf = buf.slice(i + 1);
      }
      check();
    }
    done = true;
    check();
  })();
  return {
    lines,
    /** The next line (from line index `from`) starting with `prefix`; null if the stream ends first. */
    next(prefix: string, from = lines.length): Promise<string | null> {
      return new Promise((resolve) => {
        waiters.push({ prefix, from, resolve });
        check();
      });
    },
  };
}
