// Request and response helpers of the HTTP suites: multipart uploads as the admin API takes them,
// and JSON bodies read loosely.
import type { FileSet } from '../../converter/model.ts';

/** Files as `files` parts (name = path), plus form fields. */
export function multipart(files: FileSet, fields: Record<string, string> = {}): FormData {
  const form = new FormData();
  for (const [name, bytes] of files) form.append('files', new Blob([bytes as Uint8Array<ArrayBuffer>]), name);
  for (const [key, value] of Object.entries(fields)) form.append(key, value);
  return form;
}

/** Adds `calibration` file parts (name, bytes) to a form. */
export function withCalibration(form: FormData, files: [string, Uint8Array][]): FormData {
  for (const [name, bytes] of files) form.append('calibration', new Blob([bytes as Uint8Array<ArrayBuffer>]), name);
  return form;
}

export const json = async (response: Response) => (await response.json()) as Record<string, any>;
