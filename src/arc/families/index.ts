// The family lists, grouped by file.
import { countToBar, drawBorder, invert, majorityColour, recolor } from "./colour.ts";
import { downscale, flipH, flipV, mirrorExtend, rotate90, scaleUp, tile } from "./geometry.ts";
import { cropObject, denoise, drawLines, fillEnclosed, gravity, largestObject } from "./objects.ts";

export const geometry = [flipH, flipV, rotate90, scaleUp, downscale, tile, mirrorExtend];
export const colour = [recolor, invert, majorityColour, countToBar, drawBorder];
export const objectFamilies = [cropObject, largestObject, denoise, fillEnclosed, gravity, drawLines];
