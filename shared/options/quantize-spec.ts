// The --quantize spec: `none`, `float16`, `uint16`, `uint8`, `auto` (optionally with its target
// in dB: `auto:snr=40`, every float output's SNR at least 40 dB), or per-weight rules
// `uint8=conv*/kernel,float16=*` (first matching rule wins; unmatched weights stay float32).
import { ConversionError } from '../errors.ts';

export const STORAGE_DTYPES = ['float32', 'float16', 'uint16', 'uint8'] as const;
export type StorageDtype = (typeof STORAGE_DTYPES)[number];

export type QuantizeSpec = { kind: 'auto'; minSnrDb?: number } | { kind: 'rules'; rules: { dtype: StorageDtype; pattern: RegExp; source: string }[] };

const ALIASES: Record<string, StorageDtype> = { none: 'float32', float32: 'float32', float16: 'float16', uint16: 'uint16', uint8: 'uint8' };

/** Largest SNR target: float32 rounding itself is ~150 dB. */
export const MAX_SNR_DB = 200;

/** `snr=40` (dB) → 40; a ConversionError naming the spec otherwise. */
function parseSnr(text: string, spec: string): number {
  const match = /^snr\s*=\s*(-?\d+(?:\.\d+)?)\s*(?:db)?$/i.exec(text.trim());
  const value = match ? Number(match[1]) : NaN;
  if (!(value >= 0 && value <= MAX_SNR_DB)) throw new ConversionError(`bad --quantize ${JSON.stringify(spec)}: expected auto:snr=<dB>, a number of decibels from 0 to ${MAX_SNR_DB}, e.g. auto:snr=40`);
  return value;
}

function globToRegExp(glob: string): RegExp {
  const escaped = glob.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*');
  return new RegExp(`^${escaped}$`);
}

export function parseQuantizeSpec(text: string): QuantizeSpec {
  const spec = text.trim();
  if (spec === 'auto') return { kind: 'auto' };
  const auto = /^auto\s*:\s*(.*)$/.exec(spec);
  if (auto) return { kind: 'auto', minSnrDb: parseSnr(auto[1]!, spec) };
  if (spec in ALIASES) return { kind: 'rules', rules: [{ dtype: ALIASES[spec]!, pattern: /^/, source: '*' }] };
  const rules = spec.split(',').map((part) => {
    const [dtypeText, glob, extra] = part.split('=').map((s) => s.trim());
    const dtype = ALIASES[dtypeText ?? ''];
    if (!dtype || !glob || extra !== undefined) {
      throw new ConversionError(`bad --quantize rule ${JSON.stringify(part)}: expected none|float16|uint16|uint8|auto, or rules like uint8=conv*/kernel,float16=*`);
    }
    return { dtype, pattern: globToRegExp(glob), source: glob };
  });
  return { kind: 'rules', rules };
}

/** The storage dtype a rules spec gives a float32 weight. */
export function dtypeForWeight(spec: Extract<QuantizeSpec, { kind: 'rules' }>, name: string): StorageDtype {
  return spec.rules.find((rule) => rule.pattern.test(name))?.dtype ?? 'float32';
}
