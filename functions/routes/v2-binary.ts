// The binary tensor data extension of the Open Inference Protocol (KServe v2, as Triton defines
// it), on /v2/models/{name}[/versions/{v}]/infer:
// - request: `Inference-Header-Content-Length: <n>` says the body's first n bytes are the JSON
//   request; each input with `parameters.binary_data_size` (and no `data`) takes that many bytes
//   of what follows, in input order, as raw little-endian row-major elements of its datatype;
// - response: outputs asked for with `parameters.binary_data_output: true` (request) or
//   `parameters.binary_data: true` (per output, which wins) come back the same way: the JSON
//   answer lists them with `parameters.binary_data_size` and no `data`, their bytes follow it
//   in output order, `Inference-Header-Content-Length` gives the JSON's length and the body is
//   `application/octet-stream`.
// Every inconsistency between the header, the sizes and the body is a 400 naming it.
import { jsonValues, v2Datatype } from '../../shared/codecs.ts';
import { concatBytes } from '../../shared/bytes.ts';
import { badRequest } from '../../shared/errors.ts';
import type { V2InferRequest } from '../../shared/schemas/requests.ts';
import { binaryWidth, tensorBytes } from '../../shared/tensor-bytes.ts';
import type { OutputTensor } from '../inference.ts';

export const INFERENCE_HEADER = 'Inference-Header-Content-Length';
/** The extension's name in the server metadata's `extensions` (as Triton reports it). */
export const BINARY_EXTENSION = 'binary_tensor_data';

const utf8 = new TextEncoder();

/** The JSON request and the binary data after it (undefined: the body is all JSON, no header was sent). */
export function splitInferBody(body: Uint8Array, header: string | undefined): { json: Uint8Array; binary: Uint8Array | undefined } {
  if (header === undefined) return { json: body, binary: undefined };
  const text = header.trim();
  if (!/^\d{1,15}$/.test(text)) throw badRequest(`${INFERENCE_HEADER}: expected the JSON request's length in bytes (a non-negative integer), got ${JSON.stringify(header.slice(0, 40))}`);
  const length = Number(text);
  if (length === 0) throw badRequest(`${INFERENCE_HEADER}: 0: the body must start with the JSON request`);
  if (length > body.byteLength) throw badRequest(`${INFERENCE_HEADER}: ${length} bytes is past the end of the body (${body.byteLength} bytes)`);
  return { json: body.subarray(0, length), binary: body.subarray(length) };
}

/**
 * Each input's binary data (undefined for an input given as JSON `data`), cut in input order
 * from what follows the JSON request; the sizes must be whole, within the body limit, and add
 * up to exactly the bytes there are.
 */
export function binaryInputs(request: V2InferRequest, binary: Uint8Array | undefined, maxBodyBytes: number): (Uint8Array | undefined)[] {
  let offset = 0;
  const slices = request.inputs.map((input, i) => {
    const size = input.parameters?.binary_data_size;
    if (size === undefined) return undefined;
    const field = `inputs[${i}].parameters.binary_data_size`;
    if (size > maxBodyBytes) throw badRequest(`${field}: ${size} bytes exceed the body limit of ${maxBodyBytes} bytes`);
    if (!Number.isInteger(size)) throw badRequest(`${field}: ${size} is not a whole number of bytes`);
    binaryWidth(input.datatype, `inputs[${i}].datatype`);
    if (binary === undefined) throw badRequest(`${field}: binary data needs the ${INFERENCE_HEADER} header (the JSON request's length; the tensors' bytes follow it)`);
    if (offset + size > binary.byteLength) {
      throw badRequest(`${field}: ${size} bytes from byte ${offset} of the binary data run past its end (${binary.byteLength} bytes follow the ${INFERENCE_HEADER} of JSON)`);
    }
    offset += size;
    return binary.subarray(offset - size, offset);
  });
  if (binary !== undefined && offset !== binary.byteLength) {
    throw badRequest(`body: ${binary.byteLength} bytes follow the ${INFERENCE_HEADER} of JSON, but the inputs' binary_data_size add up to ${offset}`);
  }
  return slices;
}

/** Whether an output goes back as binary data: its own `binary_data`, else the request's `binary_data_output`. */
export function binaryOutputChoice(request: V2InferRequest): (name: string) => boolean {
  const all = request.parameters?.binary_data_output === true;
  const own = new Map((request.outputs ?? []).map((o) => [o.name, o.parameters?.binary_data]));
  return (name) => own.get(name) ?? all;
}

/** The infer answer: JSON, or the JSON then the binary outputs' bytes when any is binary. */
export function encodeInferResponse(
  head: Record<string, unknown>,
  outputs: OutputTensor[],
  binary: (name: string) => boolean,
): { body: string | Uint8Array<ArrayBuffer>; headers: Record<string, string> } {
  const parts: Uint8Array[] = [];
  const listed = outputs.map((o) => {
    const datatype = v2Datatype(o.dtype);
    if (!binary(o.name)) return { name: o.name, shape: o.shape, datatype, data: jsonValues(o.values, o.dtype) };
    binaryWidth(datatype, `outputs: ${o.name}`);
    const bytes = tensorBytes(o.values);
    parts.push(bytes);
    return { name: o.name, shape: o.shape, datatype, parameters: { binary_data_size: bytes.byteLength } };
  });
  const json = JSON.stringify({ ...head, outputs: listed });
  if (parts.length === 0) return { body: json, headers: { 'Content-Type': 'application/json' } };
  const jsonBytes = utf8.encode(json);
  const body = concatBytes([jsonBytes, ...parts]) as Uint8Array<ArrayBuffer>;
  return { body, headers: { 'Content-Type': 'application/octet-stream', [INFERENCE_HEADER]: String(jsonBytes.byteLength) } };
}
