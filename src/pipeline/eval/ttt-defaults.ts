// Test-time training's defaults, in a file of their own so that the flag tables (config/train-config.ts,
// and through it the stage scripts' --help) read them without loading LibTorch (ttt.ts does).

/**
 * Test-time training's learning rate and demonstrations per step, shared by eval.ts and predict.ts
 * (--ttt_lr, --ttt_batch) and validation's --val_ttt_steps. The learning rate is the one of the values
 * tried that raised cell accuracy on both synthetic and ARC-AGI-2 tasks without destroying it
 * (docs/pipeline.md, "Measurements behind the design").
 */
export const TTT_DEFAULTS = { lr: 1e-3, batch: 2 } as const;
