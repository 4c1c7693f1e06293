// One training batch on this process: forward and backward of both losses (several passes under
// --max_batch_tokens), and, in a data-parallel run, every rank's state updates and logs gathered and
// applied in global row order. A CUDA out-of-memory error names the batch and the flags that shrink it.
import type { Example } from "../../arc/index";
import * as torch from "../../torch";
import { type ExampleLogs, applyStateUpdates } from "../system/training-step";
import type { System } from "../system/system";
import { type DataParallel, gatherRows, gatherStateUpdates, rowCounts } from "./ddp";
import { type BackwardOptions, backwardBatch } from "./backward";

export type BatchOptions = BackwardOptions & { step: number };

/** This rank's rows of a data-parallel batch (none on a rank a short last batch leaves empty); returns the global batch's logs. */
export function dataParallelBatch(sys: System, batch: Example[], o: BatchOptions, dp: DataParallel, size: number, err: (line: string) => void): ExampleLogs[] {
  return torch.scope(() => {
    const local = batch.length > 0 ? runBatch(sys, batch, { ...o, deferStateUpdates: true }, err) : { logs: [], updates: null };
    const counts = rowCounts(size, dp.world);
    const updates = gatherStateUpdates(local.updates, counts, { prompt: sys.memory.keyDim, action: sys.refiner.actionDim, device: sys.config.device });
    const applied = applyStateUpdates(sys, updates);
    return gatherRows(local.logs, counts).map((l, i) => ({ ...l, memoryWritten: applied[i].written, theta: applied[i].theta }));
  });
}

/** One batch: forward and backward of both losses, and its logs. */
export function runBatch(sys: System, batch: Example[], o: BatchOptions, err: (line: string) => void): ReturnType<typeof backwardBatch> {
  try {
    return backwardBatch(sys, batch, o);
  } catch (e) {
    if (e instanceof torch.TorchError && /out of memory/i.test(e.message)) {
      const tokens = batch.map((ex) => sys.prompter.build(ex).ids.length + sys.config.hint_tokens);
      const grids = batch.map((ex) => {
        const q = ex.task.train[ex.index]?.input ?? ex.task.test[ex.index]?.input;
        return `${q?.length}x${q?.[0]?.length}`;
      });
      err(
        `CUDA out of memory at batch ${o.step} (${batch.length} examples: tasks ${batch.map((ex) => `${ex.task.id}#${ex.index}`).join(", ")}; ` +
          `sequences of up to ${Math.max(...tokens)} tokens, grids ${grids.join(", ")}). ` +
          "Shrink memory with --max_batch_tokens (e.g. 4096), --grad_checkpointing layer, --max_prompt_tokens (e.g. 1024), --qwen_train lora, or a smaller --batch_size in a new run; the last checkpoint is intact.",
      );
    }
    throw e;
  }
}
