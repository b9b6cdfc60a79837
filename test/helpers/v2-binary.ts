// Client side of the KServe v2 binary tensor data extension, for the suites: a request framed as
// JSON then tensor bytes (with its Inference-Header-Content-Length), and a binary answer split
// back into its JSON and each output's float32 values.

export const INFERENCE_HEADER = 'inference-header-content-length';

/** The JSON request then the tensors' bytes, and the headers that frame them. */
export function binaryRequest(json: unknown, ...tensors: ArrayBufferView[]): { body: Uint8Array<ArrayBuffer>; headers: Record<string, string> } {
  const head = new TextEncoder().encode(JSON.stringify(json));
  const parts = [head, ...tensors.map((t) => new Uint8Array(t.buffer, t.byteOffset, t.byteLength))];
  const body = new Uint8Array(parts.reduce((sum, p) => sum + p.byteLength, 0));
  let offset = 0;
  for (const part of parts) {
    body.set(part, offset);
    offset += part.byteLength;
  }
  return { body, headers: { 'content-type': 'application/octet-stream', [INFERENCE_HEADER]: String(head.byteLength) } };
}

export interface BinaryOutput {
  name: string;
  shape: number[];
  datatype: string;
  data?: number[];
  parameters?: { binary_data_size?: number };
}

/** A binary answer's JSON, and each binary output's values (FP32 / INT32 / BOOL) by name. */
export async function readBinaryResponse(response: Response): Promise<{ json: { outputs: BinaryOutput[] } & Record<string, unknown>; values: Map<string, number[]> }> {
  const bytes = new Uint8Array(await response.arrayBuffer());
  const length = Number(response.headers.get(INFERENCE_HEADER));
  const json = JSON.parse(new TextDecoder().decode(bytes.subarray(0, length))) as { outputs: BinaryOutput[] };
  const values = new Map<string, number[]>();
  let offset = length;
  for (const output of json.outputs) {
    const size = output.parameters?.binary_data_size;
    if (size === undefined) continue;
    const slice = bytes.slice(offset, offset + size);
    offset += size;
    const typed = output.datatype === 'FP32' ? new Float32Array(slice.buffer) : output.datatype === 'INT32' ? new Int32Array(slice.buffer) : slice;
    values.set(output.name, Array.from(typed));
  }
  if (offset !== bytes.byteLength) throw new Error(`binary answer: ${bytes.byteLength - offset} bytes left over`);
  return { json, values };
}
