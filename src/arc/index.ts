// The ARC data layer in one import for the pipeline: `import { loadDataset, context } from "../arc/index.ts"`.
export * from "./types.ts";
export { ArcDataError, BadTaskFilesError } from "./errors.ts";
export { parseTask, validateGrid, validateTask } from "./validate.ts";
export { isCombinedChallenges, loadChallenges, loadSolutions, parseChallenges, parseSolutions, scoreSubmission, solutionsFileFor, submissionProblems, type Attempts, type Submission, type SubmissionScore } from "./prize.ts";
export { DATA_SPEC_HELP, dataSpecProblem, findSplitRoot, findTask, isBuiltInData, loadDataset, loadSplitFolder, loadTask, loadTasks, type LoadOptions, writeSplitFolder } from "./load.ts";
export { context, epochOrder, splitKey, splitTasks, target, testExamples, trainingExamples, type Context, type Example } from "./examples.ts";
export { hash32, Rng, seedOf } from "./rng.ts";
export * from "./augment.ts";
export { archiveUrl, cachedDataset, dataCacheDir, DATASETS, downloadDataset, type DatasetName, type DownloadOptions } from "./download.ts";
export { FAMILIES, FAMILY_NAMES, generate, generateTask, getFamily, syntheticDataset, type Family, type SyntheticDatasetOptions, type SyntheticTask } from "./synthetic.ts";
export * from "./render.ts";
export { certainOutputSize, splitStats, type SplitStats } from "./stats.ts";
export * from "./grid.ts";
