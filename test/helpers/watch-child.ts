// A rank for the launcher's orphan test: watches its launcher (util/launch.ts watchLauncher, as
// scripts/train.ts does), reports SIGTERM and exits 143 as the trainer would, otherwise runs for two minutes.
import { writeSync } from "node:fs";
import { watchLauncher } from "../../src/util/launch";
writeSync(1, `rank ${process.env.RANK} pid ${process.pid}\n`);
process.on("SIGTERM", () => {
  try {
    writeSync(2, `rank ${process.env.RANK} got SIGTERM\n`); // a pipe to the launcher, which may be gone
  } catch {}
  process.exit(143);
});
watchLauncher(process.env, 200);
const keepAlive = setInterval(() => {}, 1000);
await Bun.sleep(120_000);
clearInterval(keepAlive);
