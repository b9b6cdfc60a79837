// zod schemas of the prediction requests: TF Serving REST v1 `:predict` and the Open
// Inference Protocol v2 `infer`. Tensor data stays `unknown` here (zod would walk every
// element); shared/codecs.ts decodes it against the model's signature.
import * as z from 'zod';
import { V2_DATATYPES } from '../codecs.ts';

export const TfServingPredictRequest = z
  .object({
    signature_name: z.string().optional(),
    instances: z.array(z.unknown()).min(1, 'instances must hold at least one instance').optional(),
    inputs: z.unknown().optional(),
  })
  .loose()
  .superRefine((body, ctx) => {
    const hasInstances = body.instances !== undefined;
    const hasInputs = body.inputs !== undefined;
    if (hasInstances === hasInputs) {
      ctx.addIssue({ code: 'custom', path: [hasInstances ? 'inputs' : 'instances'], message: 'give exactly one of "instances" (row format) or "inputs" (columnar format)' });
    }
  });
export type TfServingPredictRequest = z.infer<typeof TfServingPredictRequest>;

const Parameters = z.record(z.string(), z.unknown());

export const V2InferInput = z.object({
  name: z.string().min(1),
  shape: z.array(z.number().int().nonnegative()),
  datatype: z.enum(V2_DATATYPES),
  parameters: Parameters.optional(),
  data: z.unknown().refine((data) => data !== undefined, 'data is required'),
});

export const V2InferRequest = z.object({
  id: z.string().optional(),
  parameters: Parameters.optional(),
  inputs: z.array(V2InferInput).min(1, 'inputs must list at least one tensor'),
  outputs: z.array(z.object({ name: z.string().min(1), parameters: Parameters.optional() })).optional(),
});
export type V2InferRequest = z.infer<typeof V2InferRequest>;

/** TF Serving's classify / regress request as `:classify` takes it: each example one image as {"b64": ...} under the input's name. */
export const TfServingClassifyRequest = z
  .object({
    signature_name: z.string().optional(),
    examples: z.array(z.record(z.string(), z.unknown())).min(1, 'examples must hold at least one example'),
    top_k: z.number().int().positive().optional(),
  })
  .loose();
export type TfServingClassifyRequest = z.infer<typeof TfServingClassifyRequest>;
