// One rank of a torch.distributed test (test/torch/distributed.test.ts): joins the group from the
// environment (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT; DIST_TIMEOUT_MS), runs a scripted scenario
// and prints one line "RESULT <json>" on stdout.
//   bun test/helpers/dist-worker.ts collectives | die | stall | env
// Exit status: 0 when the scenario went as scripted, 3 when a collective threw (printed as `error`).
import * as torch from "../../src/torch";

const D = torch.distributed;
const scenario = process.argv[2] ?? "collectives";
torch.setNumThreads(1);

const out = (o: unknown): void => {
  process.stdout.write(`RESULT ${JSON.stringify(o)}\n`);
};
const errorOf = (e: unknown) => ({ name: (e as Error)?.name, message: (e as Error)?.message ?? String(e) });
const show = (ts: torch.Tensor[]) => ts.map((t) => ({ dtype: t.dtype, shape: t.shape, v: t.tolist() }));

if (scenario === "env") {
  try {
    D.initProcessGroup({ timeoutMs: 5000 });
    out({ error: null });
  } catch (e) {
    out({ error: errorOf(e) });
  }
  process.exit(0);
}

D.initProcessGroup({ timeoutMs: Number(process.env.DIST_TIMEOUT_MS ?? 60_000) });
const r = D.rank();
const n = D.worldSize();

if (scenario === "collectives") {
  // Mixed dtypes, one tensor larger than a bucket (40 floats > 16 bytes), a non-contiguous one; rank r
  // holds base * (r + 1).
  const make = (): torch.Tensor[] => [
    torch.tensor([1, 2, 3]).mul(r + 1),
    torch.tensor([[1, 2], [3, 4]], { dtype: "float64" }).mul(r + 1),
    torch.tensor([1, 2, 3, 4, 5], { dtype: "int64" }).mul(r + 1),
    torch.arange(40, undefined, 1, { dtype: "float32" }).mul(r + 1),
    torch.tensor([1, 2, 3, 4], { dtype: "bfloat16" }).mul(r + 1),
    torch.tensor([7]).mul(r + 1),
    torch.tensor([[1, 2, 3], [4, 5, 6]]).mul(r + 1).t(),
  ];
  const res: Record<string, unknown> = { rank: r, worldSize: n, localRank: D.localRank(), initialized: D.isInitialized() };
  for (const op of ["sum", "avg", "max", "min"] as const) {
    const ts = make();
    D.allReduce(ts, { op, bucketBytes: 16 });
    res[op] = show(ts);
  }
  const big = make();
  D.allReduce(big); // default 25 MiB buckets: one per dtype
  res.sumOneBucket = show(big);

  const src = Math.min(1, n - 1);
  const b = [torch.full([2], r), torch.tensor([r * 10], { dtype: "int64" }), torch.tensor([r + 0.5], { dtype: "bfloat16" })];
  D.broadcast(b, src);
  res.broadcastSrc = src;
  res.broadcast = show(b);

  res.allGather = show(D.allGather(torch.tensor([[r, r * 10]], { dtype: "int64" })));
  res.allGatherObject = D.allGatherObject({ rank: r, s: "x".repeat(r), nested: [r, { ok: true }] });
  try {
    D.allGather(torch.zeros([r + 1]));
    res.mismatch = null;
  } catch (e) {
    res.mismatch = errorOf(e);
  }
  D.barrier();
  res.barrier = true;
  D.destroyProcessGroup();
  res.afterDestroy = D.isInitialized();
  out(res);
  process.exit(0);
}

if (scenario === "die" || scenario === "stall") {
  D.barrier(); // everyone is connected
  if (r === n - 1) {
    // "die": leave before the collective; "stall": stay alive but never join it.
    if (scenario === "stall") Bun.sleepSync(Number(process.env.DIST_TIMEOUT_MS ?? 5000) * 2.5);
    out({ rank: r, left: true });
    process.exit(0);
  }
  try {
    D.allReduce([torch.ones([4])]);
    out({ rank: r, error: null });
    process.exit(0);
  } catch (e) {
    out({ rank: r, error: errorOf(e) });
    process.exit(3);
  }
}

throw new Error(`dist-worker: unknown scenario ${scenario}`);
