// Test-time training's defaults, shared by eval.ts, predict.ts and validation's --val_ttt_steps. A file of
// its own, importing nothing, so the command lines' flag parsing can name them without loading LibTorch.
export const TTT_DEFAULTS = { lr: 1e-3, batch: 2 } as const;
