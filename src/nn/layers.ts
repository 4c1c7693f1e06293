// Linear, Embedding, Conv2d with PyTorch's default initialisations.
import { type DType, type Device, F, type Tensor, empty } from "../torch";
import { fans, kaimingUniform_, normal_, uniform_ } from "./init";
import { Module } from "./module";

export interface FactoryOptions {
  dtype?: DType;
  device?: Device;
}

export class Linear extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  constructor(readonly inFeatures: number, readonly outFeatures: number, opts: FactoryOptions & { bias?: boolean } = {}) {
    super();
    this.weight = this.registerParameter("weight", kaimingUniform_(empty([outFeatures, inFeatures], opts), Math.sqrt(5)));
    const bound = inFeatures > 0 ? 1 / Math.sqrt(inFeatures) : 0;
    this.bias = opts.bias === false ? null : this.registerParameter("bias", uniform_(empty([outFeatures], opts), -bound, bound));
  }
  forward(x: Tensor): Tensor {
    return F.linear(x, this.weight, this.bias);
  }
}

export class Embedding extends Module {
  readonly weight: Tensor;
  constructor(readonly numEmbeddings: number, readonly embeddingDim: number, opts: FactoryOptions & { paddingIdx?: number } = {}) {
    super();
    const w = normal_(empty([numEmbeddings, embeddingDim], opts));
    if (opts.paddingIdx !== undefined) w.select(0, opts.paddingIdx).zero_();
    this.weight = this.registerParameter("weight", w);
    this.paddingIdx = opts.paddingIdx ?? -1;
  }
  readonly paddingIdx: number;
  forward(indices: Tensor): Tensor {
    return F.embedding(indices, this.weight, this.paddingIdx);
  }
}

type Pair = number | [number, number];

export class Conv2d extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  readonly stride: Pair;
  readonly padding: Pair;
  readonly dilation: Pair;
  readonly groups: number;
  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    kernelSize: Pair,
    opts: FactoryOptions & { stride?: Pair; padding?: Pair; dilation?: Pair; groups?: number; bias?: boolean } = {},
  ) {
    super();
    const [kh, kw] = Array.isArray(kernelSize) ? kernelSize : [kernelSize, kernelSize];
    this.stride = opts.stride ?? 1;
    this.padding = opts.padding ?? 0;
    this.dilation = opts.dilation ?? 1;
    this.groups = opts.groups ?? 1;
    this.weight = this.registerParameter("weight", kaimingUniform_(empty([outChannels, inChannels / this.groups, kh, kw], opts), Math.sqrt(5)));
    const fanIn = fans(this.weight)[0];
    const bound = fanIn > 0 ? 1 / Math.sqrt(fanIn) : 0;
    this.bias = opts.bias === false ? null : this.registerParameter("bias", uniform_(empty([outChannels], opts), -bound, bound));
  }
  forward(x: Tensor): Tensor {
    return F.conv2d(x, this.weight, this.bias, { stride: this.stride, padding: this.padding, dilation: this.dilation, groups: this.groups });
  }
}
