// Where calibration files travel with a model, for every writer (the admin API, `edgeflow train`)
// and reader (the converter): `calibration.json` / `calibration.npy` beside the model files, or
// anything under `calibration/` (the admin API's calibration parts); and which sets are accepted:
// one .json / .npy file, or PNG / JPEG images.
import { EdgeflowError } from '../errors.ts';

/** The folder of an upload (or model folder) whose files are calibration inputs. */
export const CALIBRATION_FOLDER = 'calibration';
/** The held-out inputs `edgeflow train` writes beside a model. */
export const CALIBRATION_JSON = 'calibration.json';

export const isImagePath = (path: string) => /\.(png|jpe?g)$/i.test(path);
const isDataPath = (path: string) => /\.(json|npy)$/i.test(path);

/** Whether a model's file (folder or upload) is a calibration file rather than part of the model. */
export const isCalibrationPath = (path: string) => /^calibration\.(json|npy)$/i.test(path) || path.startsWith(`${CALIBRATION_FOLDER}/`);

/** Refuses (bad_request) a set of calibration files that is not one .json / .npy file or PNG / JPEG images only (by extension). */
export function checkCalibrationFiles(paths: string[]): void {
  const other = paths.find((path) => !isImagePath(path) && !isDataPath(path));
  if (other) throw new EdgeflowError('bad_request', `calibration file ${other}: not a .json, .npy, .png or .jpg file`);
  const data = paths.filter(isDataPath);
  if (data.length > 0 && paths.length > 1) {
    throw new EdgeflowError('bad_request', `calibration: ${paths.length} files given with ${data.join(', ')}: give one .json or .npy file, or images only`);
  }
}
