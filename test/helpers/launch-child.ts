// A rank for the launcher's tests: prints its torchrun environment as one JSON line; FAIL_RANK fails that
// rank (an error on stderr, exit 3); WAIT keeps the others running until a signal, which they report.
import { writeSync } from "node:fs";
// Lines before process.exit are written synchronously: a buffered write to a pipe may be lost at exit.
const say = (fd: 1 | 2, line: string) => writeSync(fd, `${line}\n`);
const env = Object.fromEntries(["RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "GROUP_RANK", "MASTER_ADDR", "MASTER_PORT"].map((k) => [k, process.env[k]]));
say(1, JSON.stringify({ env, argv: process.argv.slice(2) }));
for (const [sig, code] of [["SIGTERM", 143], ["SIGINT", 130]] as const)
  process.on(sig, () => {
    say(1, `rank ${env.RANK} got ${sig}`);
    process.exit(code);
  });
if (process.env.FAIL_RANK === env.RANK) {
  await Bun.sleep(300); // the other ranks are up and waiting
  say(2, `boom: rank ${env.RANK} failed on purpose`);
  process.exit(3);
}
if (process.env.WAIT) {
  say(1, `rank ${env.RANK} waiting`);
  await Bun.sleep(120_000);
}
