// Can the DemoEncoder tell the families apart on its own? The encoder plus a linear classifier trained
// on the family label (cross entropy, AdamW 2e-3, a fresh-task stream as in demo-encoder-exp --stream),
// scored on the held-out tasks' family. A diagnostic beside demo-encoder-exp.ts: if this reaches
// 60/60 while demos mode does not beat prompt, the encoder can carry the rule but the agent's loss does
// not teach it to.
//
//   bun bench/demo-encoder-probe.ts [families=flip_h,flip_v] [max_side=2] [layers=3] [steps=400]
import { DEFAULT_EXPERIMENT, makeTasks, streamBatch } from "./demo-encoder-exp";
import { context, testExamples } from "../src/arc/examples";
import * as nn from "../src/nn";
import { demoBatch } from "../src/pipeline/system/demo-batch";
import { DemoEncoder } from "../src/pipeline/system/demo-encoder";
import * as torch from "../src/torch";

const [famArg, sideArg, layersArg, stepsArg] = process.argv.slice(2);
const families = (famArg ?? "flip_h,flip_v").split(",");
const o = { ...DEFAULT_EXPERIMENT, families, maxSide: Number(sideArg ?? 2), stream: true };
const steps = Number(stepsArg ?? 400);
torch.manualSeed(0);
const enc = new DemoEncoder({ channels: o.encoderChannels, layers: Number(layersArg ?? 3), groups: 8, pooling: "mean" });
const cls = new nn.Linear(o.encoderChannels, families.length);
const opt = new torch.AdamW([...enc.parameters(), ...cls.parameters()], { lr: o.lr, weightDecay: 0 });
const familyOf = (id: string) => families.findIndex((f) => id.startsWith(`${f}-`));
const heldOut = testExamples(makeTasks(o, "held-out", o.heldOutTasks));
for (let step = 0; step < steps; step++) {
  const batch = streamBatch(o, step);
  const loss = torch.scope(() => {
    const logits = cls.forward(enc.forward(demoBatch(batch.map(context))));
    const l = torch.F.crossEntropy(logits, torch.tensor(batch.map((e) => familyOf(e.task.id)), { dtype: "int64" }));
    l.backward();
    opt.step();
    opt.zeroGrad();
    return l.item();
  });
  if ((step + 1) % 100 === 0) {
    const right = torch.noGrad(() =>
      torch.scope(() => {
        const pred = cls.forward(enc.forward(demoBatch(heldOut.map(context)))).argmax(1).tolist() as number[];
        return pred.filter((p, i) => p === familyOf(heldOut[i]!.task.id)).length;
      }),
    );
    console.log(`step ${step + 1}: loss ${loss.toFixed(3)}, held-out family ${right}/${heldOut.length}`);
  }
}
