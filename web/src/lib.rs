//! wgpu-conv for JavaScript and TypeScript: the library's convolutions, gradients, edge maps
//! and training on the browser's WebGPU, as an ES module with its `.d.ts` (built by
//! `scripts/web.sh build` into `target/web/`, with a `package.json`).
//!
//! ```js
//! import init, { Context } from './wgpu_conv.js';
//! await init();
//! const ctx = await Context.create();
//! const y = await ctx.conv2d(x, [1, 3, 32, 32], w, [8, 3, 3, 3], { padding: 1, stride: 2 });
//! ```
//!
//! Tensors go in as a `Float32Array` and a shape (row-major, PyTorch's layouts) and come back
//! as `{ data, shape }`; options carry PyTorch's names (`paddingMode` in camel case).
//! [`reference`] is the library's CPU reference, for checks and for browsers without WebGPU.

mod api;
mod convert;
mod reference;

pub use api::{Context, Trainer};
pub use reference::{conv2d_reference, train_reference};

use wasm_bindgen::prelude::*;

#[wasm_bindgen(typescript_custom_section)]
const TYPES: &'static str = r#"
/** A tensor read back: row-major values and their shape. */
export interface Output { data: Float32Array; shape: number[]; }
/** A tensor passed in an options object. */
export interface TensorLike { data: Float32Array; shape?: number[]; }
/** What `GPUAdapter.info` says; `fallback` marks a software adapter. */
export interface AdapterInfo {
  vendor: string; architecture: string; device: string; description: string; fallback: boolean;
}
/** `torch.nn.functional.conv2d`'s options (and the library's `mode`). */
export interface Conv2dOptions {
  bias?: TensorLike;
  stride?: number | [number, number];
  padding?: number | [number, number] | [number, number, number, number] | "same" | "valid";
  dilation?: number | [number, number];
  groups?: number;
  paddingMode?: "zeros" | "reflect" | "replicate" | "circular";
  mode?: "cross-correlation" | "convolution";
}
/** `Conv2dOptions` without `bias`, and which gradients to compute (default all). */
export interface BackwardOptions extends Omit<Conv2dOptions, "bias"> {
  wanted?: ("input" | "weight" | "bias")[];
}
/** The gradients asked for, each shaped like its operand. */
export interface Gradients { input?: Output; weight?: Output; bias?: Output; }
/** The kernel names of `wgpu-conv edges --kernel`. */
export type EdgeKernel = "sobel" | "prewitt" | "edge" | "edge-t" | "sobel-x" | "sobel-y"
  | "prewitt-x" | "prewitt-y" | "laplacian" | "second-derivative" | "gaussian" | "box";
/** `edges`: the kernel, the border, the mapping to levels. */
export interface EdgeOptions {
  kernel?: EdgeKernel;
  paddingMode?: "zeros" | "reflect" | "replicate" | "circular";
  map?: "auto" | "abs" | "signed" | "clamp";
}
/** A trainer's layer (`weight`, or `kernelSize` with a seeded initialisation) and SGD. */
export interface TrainerOptions extends Omit<Conv2dOptions, "bias"> {
  lr: number;
  momentum?: number;
  weightDecay?: number;
  weight?: TensorLike;
  kernelSize?: number | [number, number];
  inChannels?: number;
  outChannels?: number;
  seed?: number;
  bias?: boolean | TensorLike;
}
/** A trained layer. */
export interface Layer { weight: Output; bias?: Output; }
/** The CPU reference's result and the error bound of an `f32` result at each element. */
export interface Reference extends Output { bound: Float64Array; }
/** The CPU reference's training: every step's loss and the layer after them. */
export interface TrainedReference extends Layer { losses: Float32Array; }
"#;
