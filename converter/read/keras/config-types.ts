// Shapes of Keras model configs as edgeflow handles them (Keras 2 style, which tfjs-layers reads).

/** A layer or model in the Keras 2 serialization that tfjs-layers 4.22 deserializes. */
export interface KerasLayer {
  class_name: string;
  config: Record<string, unknown>;
  /** Functional models only: the layer's name and its inbound nodes, [[[layer, node, tensor, kwargs]]]. */
  name?: string;
  inbound_nodes?: unknown[];
}

export type JsonObject = Record<string, unknown>;

export const isObject = (value: unknown): value is JsonObject => typeof value === 'object' && value !== null && !Array.isArray(value);
