// Grouping a batch into padded passes: examples whose sizes differ run together only while the padding
// they add stays under a share of the pass. The agent groups grids by (height, width); the prompter
// groups sequences by (length, 1), and so does generate's prefill.

/** Examples (indices into the batch, ascending) that run as one padded pass of height x width. */
export interface PaddedPass {
  members: number[];
  height: number;
  width: number;
  cells: number;
}

/**
 * Groups examples into passes so that no pass wastes more than `maxPadShare` of its cells on padding.
 * Grids of one size form a unit that is never split (they cost no padding among themselves); units go,
 * largest area first, into the first pass that stays within the share, else open a new pass.
 */
export function planPasses(sizes: [number, number][], maxPadShare: number): PaddedPass[] {
  const units = new Map<string, { members: number[]; height: number; width: number }>();
  sizes.forEach(([h, w], i) => {
    const key = `${h}x${w}`;
    const unit = units.get(key);
    if (unit) unit.members.push(i);
    else units.set(key, { members: [i], height: h, width: w });
  });
  const ordered = [...units.values()].sort((a, b) => b.height * b.width - a.height * a.width || b.height - a.height || b.width - a.width);
  const passes: PaddedPass[] = [];
  for (const unit of ordered) {
    const unitCells = unit.members.length * unit.height * unit.width;
    const fits = passes.find((pass) => {
      const padded = (pass.members.length + unit.members.length) * Math.max(pass.height, unit.height) * Math.max(pass.width, unit.width);
      return 1 - (pass.cells + unitCells) / padded <= maxPadShare;
    });
    if (fits) {
      fits.members.push(...unit.members);
      fits.height = Math.max(fits.height, unit.height);
      fits.width = Math.max(fits.width, unit.width);
      fits.cells += unitCells;
    } else passes.push({ members: [...unit.members], height: unit.height, width: unit.width, cells: unitCells });
  }
  // Input order within a pass: a batch that runs as one pass then needs no reordering at all.
  for (const pass of passes) pass.members.sort((a, b) => a - b);
  return passes;
}
