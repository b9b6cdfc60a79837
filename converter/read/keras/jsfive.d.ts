// Types for the parts of jsfive 0.4.2 (pure-JS HDF5 reader, ships no typings) that the Keras reader uses.
declare module 'jsfive' {
  export type Attribute = string | number | bigint | boolean | Array<string | number | bigint> | null;

  export class Group {
    readonly name: string;
    readonly keys: string[];
    readonly attrs: Record<string, Attribute>;
    get(path: string): Group | Dataset | null;
  }

  export class File extends Group {
    constructor(buffer: ArrayBuffer, filename?: string);
  }

  export class Dataset {
    readonly name: string;
    readonly shape: number[];
    /** numpy-style dtype string such as '<f4', '<i8', or a compound/vlen description. */
    readonly dtype: string | object;
    readonly value: ArrayLike<number | bigint>;
    readonly attrs: Record<string, Attribute>;
  }
}
