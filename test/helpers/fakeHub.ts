// A local stand-in for the Hugging Face Hub's resolve endpoint, for tests (Bun.serve on port 0).
//   HEAD/GET /{repo}/resolve/{revision}/{file}
//     LFS files (*.safetensors by default): 302 to an absolute CDN-like URL on the same server, with
//       X-Repo-Commit, X-Linked-Etag (sha256), X-Linked-Size, and a Content-Length/ETag of the
//       redirect itself (which clients must not use).
//     Other files: 200 with X-Repo-Commit, ETag (git blob sha1) and Content-Length.
//     Errors like the Hub's: 401 RepoNotFound, 404 EntryNotFound / RevisionNotFound, X-Error-* headers.
//   GET /cdn/{sha256}: the bytes, honouring `Range: bytes=N-` with 206 + Content-Range.
import { createHash } from "node:crypto";

export interface FakeRepo {
  commit: string;
  files: Record<string, Uint8Array | string>;
}

export interface FakeHubOptions {
  repos: Record<string, FakeRepo>;
  /** When set, every request must carry `Authorization: Bearer <token>`. */
  token?: string;
  /** Old id -> new id: HEAD answers a relative 307 redirect, like a renamed repo. */
  renamed?: Record<string, string>;
  /** Serve this many fewer bytes of a file than announced (Content-Length consistent with the short body). */
  shortBy?: Record<string, number>;
  /** Flip a byte of this file's contents as served. */
  corrupt?: string[];
  /**
   * Break the connection once after this many bytes of the file (an LFS file): its first CDN
   * redirect goes to a raw TCP listener that sends the headers and that many bytes, then closes.
   */
  dropAfter?: Record<string, number>;
  /** Answer 200 with the whole file even when a Range is asked. */
  ignoreRange?: boolean;
  isLfs?: (filename: string) => boolean;
}

export interface LoggedRequest {
  method: string;
  path: string;
  range: string | null;
  authorization: string | null;
}

export interface FakeHub {
  url: string;
  port: number;
  requests: LoggedRequest[];
  sha256(repo: string, file: string): string;
  bytes(repo: string, file: string): Uint8Array;
  stop(): void;
}

const enc = new TextEncoder();
const asBytes = (c: Uint8Array | string) => (typeof c === "string" ? enc.encode(c) : c);
export const sha256Hex = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
const gitSha1 = (b: Uint8Array) => createHash("sha1").update(`blob ${b.length}\0`).update(b).digest("hex");

export function startFakeHub(opts: FakeHubOptions): FakeHub {
  const requests: LoggedRequest[] = [];
  const isLfs = opts.isLfs ?? ((f: string) => f.endsWith(".safetensors"));
  const byHash = new Map<string, { file: string; data: Uint8Array }>();
  for (const [, repo] of Object.entries(opts.repos)) {
    for (const [f, c] of Object.entries(repo.files)) byHash.set(sha256Hex(asBytes(c)), { file: f, data: asBytes(c) });
  }
  const dropped = new Set<string>();

  // The connection-breaking "CDN" for dropAfter.
  const breaker = Bun.listen<{ pump?: () => void }>({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      data(sock, raw) {
        const head = new TextDecoder().decode(raw);
        const [line, ...lines] = head.split("\r\n");
        const path = line!.split(" ")[1] ?? "";
        const hdr = (name: string) => lines.find((l) => l.toLowerCase().startsWith(name + ":"))?.slice(name.length + 1).trim() ?? null;
        requests.push({ method: line!.split(" ")[0]!, path, range: hdr("range"), authorization: hdr("authorization") });
        const hit = byHash.get(path.slice("/cdn/".length));
        if (!hit) return void sock.end();
        const start = Number(/^bytes=(\d+)-$/.exec(hdr("range") ?? "")?.[1] ?? 0);
        const stop = opts.dropAfter?.[hit.file] ?? hit.data.length;
        const status = start > 0 ? "206 Partial Content" : "200 OK";
        const range = start > 0 ? `Content-Range: bytes ${start}-${hit.data.length - 1}/${hit.data.length}\r\n` : "";
        sock.write(`HTTP/1.1 ${status}\r\nContent-Length: ${hit.data.length - start}\r\n${range}Content-Type: application/octet-stream\r\n\r\n`);
        const buf = hit.data.subarray(start, Math.max(start, stop));
        let off = 0;
        sock.data = {
          pump: () => {
            while (off < buf.length) {
              const w = sock.write(buf.subarray(off));
              if (w <= 0) return;
              off += w;
            }
            sock.data.pump = undefined;
            sock.flush();
            setTimeout(() => sock.end(), 50); // let the client read the bytes before the close
          },
        };
        sock.data.pump!();
      },
      drain(sock) {
        sock.data?.pump?.();
      },
    },
  });

  const served = (file: string, data: Uint8Array): Uint8Array => {
    let out = data;
    if (opts.corrupt?.includes(file)) {
      out = data.slice();
      out[out.length >> 1]! ^= 0xff;
    }
    const short = opts.shortBy?.[file];
    if (short) out = out.subarray(0, Math.max(0, out.length - short));
    return out;
  };

  const body = (req: Request, file: string, data: Uint8Array): Response => {
    const all = served(file, data);
    const m = /^bytes=(\d+)-$/.exec(req.headers.get("range") ?? "");
    let start = 0;
    let status = 200;
    const headers: Record<string, string> = { "Content-Type": "application/octet-stream", "Accept-Ranges": "bytes" };
    if (m && !opts.ignoreRange) {
      start = Number(m[1]);
      if (start >= all.length) return new Response(null, { status: 416, headers: { "Content-Range": `bytes */${all.length}` } });
      status = 206;
      headers["Content-Range"] = `bytes ${start}-${all.length - 1}/${all.length}`;
    }
    const part = all.subarray(start);
    headers["Content-Length"] = String(part.length);
    return new Response(part, { status, headers });
  };

  const server = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    error() {
      return new Response("fake hub error", { status: 500 });
    },
    fetch(req) {
      const u = new URL(req.url);
      requests.push({ method: req.method, path: decodeURIComponent(u.pathname), range: req.headers.get("range"), authorization: req.headers.get("authorization") });
      const err = (status: number, code: string, msg: string, extra: Record<string, string> = {}) =>
        new Response(req.method === "HEAD" ? null : msg, { status, headers: { "X-Error-Code": code, "X-Error-Message": msg, ...extra } });
      if (opts.token && req.headers.get("authorization") !== `Bearer ${opts.token}`) {
        return err(401, "RepoNotFound", "Repository not found");
      }
      if (u.pathname.startsWith("/cdn/")) {
        const hit = byHash.get(u.pathname.slice(5));
        if (!hit) return new Response("no such blob", { status: 404 });
        return body(req, hit.file, hit.data);
      }
      const m = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(u.pathname);
      if (!m) return new Response("not found", { status: 404 });
      const [, repoId, revision, file] = [m[0], m[1]!, decodeURIComponent(m[2]!), decodeURIComponent(m[3]!)];
      const renamed = opts.renamed?.[repoId];
      if (renamed) return new Response(null, { status: 307, headers: { Location: `/${renamed}/resolve/${m[2]}/${m[3]}` } });
      const repo = opts.repos[repoId];
      if (!repo) return err(401, "RepoNotFound", "Repository not found");
      if (revision !== "main" && revision !== repo.commit) return err(404, "RevisionNotFound", "Invalid rev id: " + revision);
      const content = repo.files[file];
      if (content === undefined) return err(404, "EntryNotFound", "Entry not found", { "X-Repo-Commit": repo.commit });
      const data = asBytes(content);
      if (isLfs(file)) {
        const sha = sha256Hex(data);
        const breakNow = opts.dropAfter?.[file] !== undefined && !dropped.has(file) && req.method === "HEAD";
        if (breakNow) dropped.add(file);
        return new Response(null, {
          status: 302,
          headers: {
            Location: breakNow ? `http://127.0.0.1:${breaker.port}/cdn/${sha}` : `${u.origin}/cdn/${sha}`,
            "X-Repo-Commit": repo.commit,
            "X-Linked-Etag": `"${sha}"`,
            "X-Linked-Size": String(data.length),
            ETag: `"${gitSha1(enc.encode("version https://git-lfs.github.com/spec/v1\n"))}"`,
            "Content-Length": "1371",
          },
        });
      }
      if (req.method === "HEAD") {
        return new Response(null, {
          status: 200,
          headers: { "X-Repo-Commit": repo.commit, ETag: `"${gitSha1(data)}"`, "Content-Length": String(data.length) },
        });
      }
      return body(req, file, data);
    },
  });
  const url = `http://127.0.0.1:${server.port}`;
  return {
    url,
    port: server.port!,
    requests,
    sha256: (repo, file) => sha256Hex(asBytes(opts.repos[repo]!.files[file]!)),
    bytes: (repo, file) => asBytes(opts.repos[repo]!.files[file]!),
    stop: () => {
      server.stop(true);
      breaker.stop(true);
    },
  };
}

/** A stream for progress output that keeps what is written. */
export function captureStream(): { stream: NodeJS.WriteStream; text: () => string } {
  let buf = "";
  const stream = { isTTY: false, write: (s: string) => ((buf += s), true) } as unknown as NodeJS.WriteStream;
  return { stream, text: () => buf };
}
