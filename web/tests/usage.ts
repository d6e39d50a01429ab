// Every call of the package as TypeScript code uses it, type-checked against the generated
// .d.ts (`tsc -p web/tests`, run by package.test.mjs); it is compiled, never run.
import init, {
  Context, Trainer, conv2dReference, trainReference,
  type AdapterInfo, type Gradients, type Layer, type Output, type Reference, type TrainedReference,
} from '../../target/web/wgpu_conv.js';

export async function everyCall(image: ImageData, bitmap: ImageBitmap): Promise<number> {
  await init();
  const ctx: Context = await Context.create();
  const info: AdapterInfo = ctx.adapter;
  const name: string = ctx.describe() + info.vendor + info.architecture;
  const x = new Float32Array(2 * 3 * 8 * 8), w = new Float32Array(4 * 3 * 3 * 3);
  const y: Output = await ctx.conv2d(x, [2, 3, 8, 8], w, [4, 3, 3, 3], {
    stride: [2, 1], padding: 'same', dilation: 1, groups: 1, paddingMode: 'reflect',
    mode: 'convolution', bias: { data: new Float32Array(4), shape: [4] },
  });
  const plain: Output = await ctx.conv2d(x, [2, 3, 8, 8], w, [4, 3, 3, 3]);
  const g: Gradients = await ctx.conv2dBackward(x, [2, 3, 8, 8], w, [4, 3, 3, 3], y.data, y.shape,
    { padding: [1, 1, 0, 2], wanted: ['input', 'weight', 'bias'] });
  const k: Output = await ctx.corr2d([0, 1, 2, 3, 4, 5, 6, 7, 8], [3, 3], [0, 1, 2, 3], [2, 2]);
  const e1: ImageData = await ctx.edges(image, 'prewitt');
  const e2: ImageData = await ctx.edges(bitmap, { kernel: 'gaussian', paddingMode: 'zeros', map: 'clamp' });
  const e3: ImageData = await ctx.edges(image);
  const t = new Trainer(ctx, x, [2, 3, 8, 8], y.data, y.shape, {
    lr: 0.03, momentum: 0.9, weightDecay: 1e-4, kernelSize: 3, inChannels: 3, outChannels: 4,
    seed: 1, bias: true, padding: 'same',
  });
  t.step(); t.step(5);
  const losses: Float32Array = await t.losses();
  const layer: Layer = await t.layer();
  t.free();
  const r: Reference = conv2dReference(x, [2, 3, 8, 8], w, [4, 3, 3, 3], { padding: 1 });
  const bound: Float64Array = r.bound;
  const tr: TrainedReference = trainReference(x, [2, 3, 8, 8], y.data, y.shape, { lr: 0.1, weight: { data: w, shape: [4, 3, 3, 3] } }, 3);
  ctx.free();
  return name.length + plain.data.length + (g.input?.data.length ?? 0) + k.data[0] + e1.width + e2.height
    + e3.width + losses.length + layer.weight.data.length + bound.length + tr.losses.length;
}
