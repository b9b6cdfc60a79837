// Model names and storage keys of the published layout (one layout for R2, S3 and folders).
import { EdgeflowError } from './errors.ts';

/** 1-64 of a-z, 0-9, '.', '_', '-', starting with a letter or digit, without '..'. */
export const MODEL_NAME_PATTERN = /^(?!.*\.\.)[a-z0-9][a-z0-9._-]{0,63}$/;

export class InvalidNameError extends EdgeflowError {
  constructor(name: string) {
    super('bad_request', `invalid model name ${JSON.stringify(name)}: use 1-64 characters of a-z, 0-9, '.', '_' or '-', starting with a letter or digit`);
    this.name = 'InvalidNameError';
  }
}

export function checkModelName(name: string): string {
  if (!MODEL_NAME_PATTERN.test(name)) throw new InvalidNameError(name);
  return name;
}

export const keys = {
  index: (name: string) => `models/${checkModelName(name)}/index.json`,
  versionPrefix: (name: string, version: number) => `models/${checkModelName(name)}/${version}/`,
  versionFile: (name: string, version: number, file: string) => `models/${checkModelName(name)}/${version}/${file}`,
  claim: (name: string, version: number) => `models/${checkModelName(name)}/${version}/.claim`,
};

/** A version path segment (1 to 999999999, no leading zero) as a number; null when it is not one. */
export function parseVersion(text: string): number | null {
  return /^[1-9][0-9]{0,8}$/.test(text) ? Number(text) : null;
}
