// Types of jpeg-js's decoder alone (imported without its encoder, which needs Node's Buffer).
declare module 'jpeg-js/lib/decoder.js' {
  export default function decode(
    data: Uint8Array,
    options: { useTArray: true; formatAsRGBA?: boolean; tolerantDecoding?: boolean; maxResolutionInMP?: number; maxMemoryUsageInMB?: number },
  ): { width: number; height: number; data: Uint8Array };
}
