// A rank for the launcher's tests: prints its torchrun environment as one JSON line; FAIL_RANK fails that
// rank (an error on stderr, exit 3); WAIT keeps the others running until a signal, which they report.
export {}; // a module: top-level await
const env = Object.fromEntries(["RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "GROUP_RANK", "MASTER_ADDR", "MASTER_PORT"].map((k) => [k, process.env[k]]));
console.log(JSON.stringify({ env, argv: process.argv.slice(2) }));
for (const [sig, code] of [["SIGTERM", 143], ["SIGINT", 130]] as const)
  process.on(sig, () => {
    console.log(`rank ${env.RANK} got ${sig}`);
    process.exit(code);
  });
if (process.env.FAIL_RANK === env.RANK) {
  await Bun.sleep(300); // the other ranks are up and waiting
  console.error(`boom: rank ${env.RANK} failed on purpose`);
  process.exit(3);
}
if (process.env.WAIT) {
  console.log(`rank ${env.RANK} waiting`);
  await Bun.sleep(120_000);
}
