// Examples under an augmentation of their whole task (prompt and grids alike): for voting at evaluation,
// test-time training, and --augment in training. The label keys cached prompt vectors.
import { type Augmentation, DIHEDRAL_NAMES, augmentTask, randomAugmentation } from "../../arc/augment";
import type { Example } from "../../arc/examples";
import { Rng, hash32 } from "../../arc/rng";

/** A short label of an augmentation (the prompt cache's key, the report). */
export const augmentationLabel = (a: Augmentation): string => `${DIHEDRAL_NAMES[a.dihedral ?? 0]}${a.colours ? `+c${a.colours.join("")}` : ""}`;

/** The example under an augmentation (the whole task transformed; the label keys cached prompt vectors). */
export function augmentExample(ex: Example, aug: Augmentation): Example {
  return { ...ex, task: augmentTask(ex.task, aug), augmentation: augmentationLabel(aug) };
}

/**
 * --augment: the training example at `slot` of batch `batch` in `epoch`, under a random dihedral transform
 * and colour permutation keeping 0. Drawn from a generator seeded by (seed, epoch, batch, slot), not from a
 * running stream, so a resumed run augments its batches exactly as an uninterrupted one.
 */
export function trainingAugmentation(ex: Example, seed: number, epoch: number, batch: number, slot: number): Example {
  return augmentExample(ex, randomAugmentation(new Rng(hash32(`augment#${seed}#${epoch}#${batch}#${slot}`))));
}
