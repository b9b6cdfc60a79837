// Single-op layers: Embedding (Cast to int32 + GatherV2; mask_zero refused), Permute (Transpose)
// and UpSampling2D nearest (ResizeNearestNeighbor; integer factors, where Keras' half-pixel centres
// and TF.js's defaults pick the same pixels; bilinear refused).
import { attr } from '../graphdef.ts';
import { NotCompilable } from '../keras-calls.ts';
import type { TopologyLayer } from '../../schemas/model-json.ts';
import { type LowerContext, layerConfig, layerName, type Tensor } from './context.ts';

export function lowerEmbedding(ctx: LowerContext, layer: TopologyLayer, x: Tensor): Tensor {
  const base = layerName(layer);
  if (layerConfig(layer).mask_zero === true) throw new NotCompilable(`Embedding ${JSON.stringify(base)} has mask_zero=True (masks are not compiled)`);
  const table = ctx.weight(layer, 'embeddings')!;
  const g = ctx.graph;
  const indices = x.dtype === 'int32' ? x.name : g.op(`${base}/indices`, 'Cast', [x.name], { SrcT: attr.float(), DstT: attr.dtype('int32'), Truncate: attr.bool(false) });
  const params = g.constant(`${base}/embeddings`, table.shape, table.values);
  const name = g.op(base, 'GatherV2', [params, indices, g.constant(`${base}/axis`, [], Int32Array.of(0))], {
    Tparams: attr.float(),
    Tindices: attr.dtype('int32'),
    Taxis: attr.dtype('int32'),
    batch_dims: attr.int(0),
  });
  return { name, shape: [...x.shape, table.shape[1]!] };
}

export function lowerPermute(ctx: LowerContext, layer: TopologyLayer, x: Tensor): Tensor {
  const base = layerName(layer);
  const dims = (layerConfig(layer).dims as unknown[] | undefined)?.map(Number) ?? [];
  if (dims.length !== x.shape.length - 1 || [...dims].sort().some((d, i) => d !== i + 1)) throw new NotCompilable(`Permute ${JSON.stringify(base)} has dims ${JSON.stringify(dims)}`);
  const perm = [0, ...dims];
  const name = ctx.graph.op(base, 'Transpose', [x.name, ctx.graph.ints(`${base}/perm`, perm)], { T: attr.float(), Tperm: attr.dtype('int32') });
  return { name, shape: perm.map((p) => x.shape[p]!) };
}

export function lowerUpSampling2d(ctx: LowerContext, layer: TopologyLayer, x: Tensor): Tensor {
  const base = layerName(layer);
  const c = layerConfig(layer);
  if ((c.interpolation ?? 'nearest') !== 'nearest') throw new NotCompilable(`UpSampling2D ${JSON.stringify(base)} has interpolation=${JSON.stringify(c.interpolation)}`);
  if (c.data_format !== undefined && c.data_format !== null && c.data_format !== 'channels_last') throw new NotCompilable(`UpSampling2D ${JSON.stringify(base)} is channels_first`);
  const size = Array.isArray(c.size) ? c.size.map(Number) : [Number(c.size ?? 2), Number(c.size ?? 2)];
  const [, h, w, channels] = x.shape as [number, number, number, number];
  if (x.shape.length !== 4 || !(h > 0 && w > 0) || !size.every((s) => Number.isInteger(s) && s > 0))
    throw new NotCompilable(`UpSampling2D ${JSON.stringify(base)} on an input of shape [${x.shape}] with size ${JSON.stringify(c.size)}`);
  const target = [h * size[0]!, w * size[1]!];
  const name = ctx.graph.op(base, 'ResizeNearestNeighbor', [x.name, ctx.graph.ints(`${base}/size`, target)], {
    T: attr.float(),
    align_corners: attr.bool(false),
    half_pixel_centers: attr.bool(false),
  });
  return { name, shape: [x.shape[0]!, target[0]!, target[1]!, channels] };
}
