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

/** Parameters of the binary tensor data extension (KServe v2 / Triton), beside any others. */
const InputParameters = z
  .object({
    // Whole and within the body limit: checked with the body (functions/routes/v2-binary.ts).
    binary_data_size: z.number('binary_data_size must be a byte count').nonnegative('binary_data_size must not be negative').optional(),
  })
  .loose();
const OutputParameters = z.object({ binary_data: z.boolean('binary_data must be true or false').optional() }).loose();
const RequestParameters = z.object({ binary_data_output: z.boolean('binary_data_output must be true or false').optional() }).loose();

export const V2InferInput = z
  .object({
    name: z.string().min(1),
    shape: z.array(z.number().int().nonnegative()),
    datatype: z.enum(V2_DATATYPES),
    parameters: InputParameters.optional(),
    data: z.unknown().optional(),
  })
  .superRefine((input, ctx) => {
    const binary = input.parameters?.binary_data_size !== undefined;
    if (!binary && input.data === undefined) ctx.addIssue({ code: 'custom', path: ['data'], message: 'data is required (or parameters.binary_data_size with the tensor as binary data)' });
    if (binary && input.data !== undefined) ctx.addIssue({ code: 'custom', path: ['data'], message: 'give data or parameters.binary_data_size, not both' });
  });

export const V2InferRequest = z.object({
  id: z.string().optional(),
  parameters: RequestParameters.optional(),
  inputs: z.array(V2InferInput).min(1, 'inputs must list at least one tensor'),
  outputs: z.array(z.object({ name: z.string().min(1), parameters: OutputParameters.optional() })).optional(),
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
