// The episodic memory stage on its own (docs/pipeline.md, "Memory"): a simulated stream of examples shows the dynamic
// threshold, writes, evictions and reads. `bun scripts/memory.ts --help`.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { EpisodicMemory, type EpisodicMemoryState } from "../src/pipeline/system/episodic-memory.ts";
import * as torch from "../src/torch.ts";
import { oneLineErrors, parseCommandLine } from "../src/util/cli.ts";
oneLineErrors("memory");

const USAGE = `Usage: bun scripts/memory.ts [options]

Simulates the episodic memory on a stream of examples. Prompts come from --tasks tasks (a task's prompts
are its centre plus noise, so they are close in cosine); each task has a hidden good action. The applied
action is the memory's bias (when a read hits) plus Gaussian noise; R_after = 0.5 + 0.5 cos(action, good),
R_before = 0.5, r = R_after - R_before. Prints theta, size, writes, evictions, the hit rate and how well the
read biases match the good actions. No model or data needed.

Options:
  --key_dim N          width of p (default 64)
  --action_dim N       action width k (default 32)
  --capacity N         entries kept (default 2048)
  --tasks N            distinct tasks in the stream (default 50)
  --examples N         examples in the stream (default 2000)
  --noise X            prompt noise relative to the task centre (default 0.5)
  --top_k N            entries a read averages (default 4)
  --min_similarity X   least cosine for a hit (default 0.5)
  --log_every N        a line every N examples (default 250)
  --seed N             torch seed (default 0)
  --save DIR           write memory.safetensors + memory.json there and check the round trip
  --json               one JSON line per log step
  --help               this text

Exit codes: 0 ok, 1 round-trip mismatch, 2 bad arguments.`;

const OPTIONS = {
  key_dim: { type: "string", default: "64" },
  action_dim: { type: "string", default: "32" },
  capacity: { type: "string", default: "2048" },
  tasks: { type: "string", default: "50" },
  examples: { type: "string", default: "2000" },
  noise: { type: "string", default: "0.5" },
  top_k: { type: "string", default: "4" },
  min_similarity: { type: "string", default: "0.5" },
  log_every: { type: "string", default: "250" },
  seed: { type: "string", default: "0" },
  save: { type: "string" },
  json: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

function main(argv: string[]): number {
  const { values, fail, int, num } = parseCommandLine("memory", USAGE, OPTIONS, argv);
  const P = int("key_dim");
  const k = int("action_dim");
  const capacity = int("capacity");
  const nTasks = int("tasks");
  const examples = int("examples");
  const noise = num("noise", 0, 100);
  const topK = int("top_k");
  const minSimilarity = num("min_similarity", -1, 1);
  const logEvery = int("log_every");
  const seed = int("seed", 0);

  torch.manualSeed(seed);
  const mem = new EpisodicMemory({ keyDim: P, actionDim: k, capacity, topK, minSimilarity });
  const centres = torch.keep(torch.scope(() => torch.F.normalize(torch.randn([nTasks, P]), { dim: 1 })));
  const good = torch.keep(torch.scope(() => torch.F.normalize(torch.randn([nTasks, k]), { dim: 1 })));
  if (!values.json) process.stdout.write(`EpisodicMemory: P=${P} k=${k} capacity=${capacity} top-k=${topK} min cosine=${minSimilarity}; ${nTasks} tasks, ${examples} examples\n`);

  let win = { n: 0, hits: 0, biasCos: 0, rAfter: 0 };
  for (let i = 1; i <= examples; i++) {
    torch.scope(() => {
      const task = torch.randint(0, nTasks, [1]).item();
      const p = centres.select(0, task).add(torch.randn([P]).mul(noise / Math.sqrt(P)));
      const g = good.select(0, task);
      const read = mem.read(p);
      const action = (read.bias ?? torch.zeros([k])).add(torch.randn([k]).mul(0.5));
      const rAfter = 0.5 + 0.5 * torch.F.cosineSimilarity(action, g, 0).item();
      mem.update(p, action, rAfter, rAfter - 0.5);
      win.n += 1;
      win.rAfter += rAfter;
      if (read.bias) {
        win.hits += 1;
        win.biasCos += torch.F.cosineSimilarity(read.bias, g, 0).item();
      }
    });
    if (i % logEvery === 0 || i === examples) {
      const s = mem.stats;
      const row = {
        example: i, theta: s.theta, size: s.size, writes: s.writes, evictions: s.evictions, rejected: s.rejected,
        hitRate: win.hits / win.n, biasCos: win.hits ? win.biasCos / win.hits : null, rAfter: win.rAfter / win.n, meanStored: s.meanReward,
      };
      if (values.json) process.stdout.write(JSON.stringify(row) + "\n");
      else
        process.stdout.write(
          `[Example ${String(i).padStart(6)}] theta: ${s.theta.toFixed(3)} | size: ${s.size} | writes: ${s.writes} | evictions: ${s.evictions} | ` +
            `hit rate: ${row.hitRate.toFixed(2)} | cos(bias, good): ${row.biasCos === null ? "-" : row.biasCos.toFixed(3)} | R_after: ${row.rAfter.toFixed(3)}\n`,
        );
      win = { n: 0, hits: 0, biasCos: 0, rAfter: 0 };
    }
  }

  let rc = 0;
  if (typeof values.save === "string") {
    const dir = values.save;
    mkdirSync(dir, { recursive: true });
    const file = join(dir, "memory.safetensors");
    torch.scope(() => torch.safetensors.saveFile(file, mem.stateTensors()));
    writeFileSync(join(dir, "memory.json"), JSON.stringify(mem.stateJson()) + "\n");
    const json = JSON.parse(readFileSync(join(dir, "memory.json"), "utf8")) as EpisodicMemoryState;
    const back = torch.scope(() => EpisodicMemory.fromState(torch.safetensors.loadFile(file), json));
    const same = torch.scope(() => {
      let ok = back.theta === mem.theta && back.size === mem.size && JSON.stringify(back.stateJson()) === JSON.stringify(mem.stateJson());
      for (let t = 0; t < nTasks && ok; t++) {
        const a = mem.read(centres.select(0, t));
        const b = back.read(centres.select(0, t));
        ok = JSON.stringify(a.slots) === JSON.stringify(b.slots) && (a.bias === null ? b.bias === null : b.bias !== null && a.bias.equal(b.bias));
      }
      return ok;
    });
    process.stdout.write(`saved ${mem.size} entries to ${dir} (memory.safetensors, memory.json); round trip ${same ? "identical" : "MISMATCH"}\n`);
    back.dispose();
    if (!same) rc = 1;
  }
  torch.dispose([centres, good]);
  mem.dispose();
  return rc;
}

process.exitCode = main(process.argv.slice(2));
