// Keras readers (HDF5 and .keras): placeholder until the Keras import lands.
import { ConversionError, type DecodedModel, type FileSet } from '../model.ts';

const HDF5_SIGNATURE = [0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a];

export function isHdf5(bytes: Uint8Array): boolean {
  return HDF5_SIGNATURE.every((b, i) => bytes[i] === b);
}

export async function readKerasH5(_bytes: Uint8Array, name: string): Promise<DecodedModel> {
  throw new ConversionError(`${name}: Keras HDF5 import is not available yet`);
}

export async function readKerasV3(_files: FileSet, name: string): Promise<DecodedModel> {
  throw new ConversionError(`${name}: Keras .keras import is not available yet`);
}
