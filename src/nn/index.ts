// torch.nn for this binding: Module and layers with PyTorch's names and default initialisations.
export { Module, type LoadResult } from "./module";
export { Linear, Embedding, Conv2d, type FactoryOptions } from "./layers";
export { RMSNorm, LayerNorm, GroupNorm } from "./norm";
export { ModuleList, Sequential, Dropout, GELU, SiLU, ReLU, Identity } from "./container";
export * as init from "./init";
