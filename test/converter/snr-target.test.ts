// The tolerance in dB: `--min-snr` / `minSnrDb` and `--quantize auto:snr=<dB>` (one options schema,
// the stricter floor of both), every float output's SNR held against it in the report and by auto's
// search, whose first trial is every weight at uint8.
import { beforeAll, describe, expect, it } from 'vitest';
import { useNodeBackend } from '../../cli/backend.ts';
import { convertModel, ToleranceError } from '../../converter/convert.ts';
import { targetUse, type Drift } from '../../converter/verify.ts';
import { ConversionOptions, resolveConversionOptions } from '../../shared/options/conversion.ts';
import { parseQuantizeSpec } from '../../shared/options/quantize-spec.ts';
import { tinyDenseModel } from '../helpers/tiny-models.ts';

beforeAll(async () => {
  await useNodeBackend();
});

const drift = (relativeError: number, snrDb: number | null): Drift => ({
  maxAbsError: relativeError,
  meanAbsError: relativeError,
  relativeError,
  top1Agreement: null,
  integerAgreement: null,
  outputs: [{ index: 0, kind: 'float', maxAbsError: relativeError, snrDb, agreement: null }],
});

describe('the SNR target in the options', () => {
  it('parses auto:snr=<dB> and refuses anything else after auto:', () => {
    expect(parseQuantizeSpec('auto:snr=40')).toEqual({ kind: 'auto', minSnrDb: 40 });
    expect(parseQuantizeSpec('auto: snr = 62.5dB')).toEqual({ kind: 'auto', minSnrDb: 62.5 });
    for (const bad of ['auto:snr=', 'auto:snr=-3', 'auto:snr=1e9', 'auto:tolerance=2', 'auto:']) {
      expect(() => parseQuantizeSpec(bad), bad).toThrow(/expected auto:snr=<dB>, a number of decibels from 0 to 200/);
    }
    expect(ConversionOptions.safeParse({ quantize: 'auto:snr=x' }).success).toBe(false);
    expect(ConversionOptions.safeParse({ minSnrDb: 201 }).error?.issues[0]?.message).toBe('at most 200 dB');
  });

  it('resolves one floor: minSnrDb, the auto spec, or the stricter of both; absent when neither', () => {
    expect(resolveConversionOptions({}).minSnrDb).toBeUndefined();
    expect(resolveConversionOptions({ minSnrDb: 30 }).minSnrDb).toBe(30);
    expect(resolveConversionOptions({ quantize: 'auto:snr=45' }).minSnrDb).toBe(45);
    expect(resolveConversionOptions({ quantize: 'auto:snr=45', minSnrDb: 50 }).minSnrDb).toBe(50);
  });

  it('measures the share of the target a drift uses (≤ 1 meets it)', () => {
    expect(targetUse(drift(0.025, 50), { tolerance: 0.05 })).toBeCloseTo(0.5, 9);
    // 30 dB asked, 40 dB reached: a tenth of the noise power allowed.
    expect(targetUse(drift(0.001, 40), { tolerance: 0.05, minSnrDb: 30 })).toBeCloseTo(0.1, 9);
    expect(targetUse(drift(0.001, 37), { tolerance: 0.05, minSnrDb: 40 })).toBeCloseTo(10 ** 0.3, 9);
    expect(targetUse(drift(0, null), { tolerance: 0, minSnrDb: 200 })).toBe(0);
    expect(targetUse(drift(1e-9, 150), { tolerance: 0 })).toBe(Infinity);
  });
});

describe('conversions held to an SNR floor', () => {
  it('reports the floor, and refuses a mode that misses it, naming the SNR reached and asked', async () => {
    const ok = await convertModel(await tinyDenseModel(), { name: 'tiny', quantize: 'float16', minSnrDb: 40 });
    expect(ok.report).toMatchObject({ minSnrDb: 40, passed: true });
    expect(ok.report.outputs![0]!.snrDb!).toBeGreaterThanOrEqual(40);
    const refused = convertModel(await tinyDenseModel(), { name: 'tiny', quantize: 'uint8', minSnrDb: 120 });
    await expect(refused).rejects.toBeInstanceOf(ToleranceError);
    await expect(refused).rejects.toThrow(/worst output SNR \d+\.\d dB against the 120 dB asked .*with --quantize uint8/);
  });

  it('auto: every weight at uint8 in one trial where that meets the floor; wider weights for a higher floor', async () => {
    const loose = await convertModel(await tinyDenseModel(), { name: 'tiny', quantize: 'auto:snr=20' });
    expect(loose.metadata.quantization.auto!.trials).toBe(1);
    expect(Object.values(loose.metadata.quantization.weights).map((w) => w.dtype)).toEqual(['uint8', 'uint8', 'uint8', 'uint8']);
    expect(loose.report.minSnrDb).toBe(20);

    const progress: string[] = [];
    const strict = await convertModel(await tinyDenseModel(), { name: 'tiny', quantize: 'auto:snr=70', onProgress: ({ detail }) => progress.push(detail) });
    expect(strict.report).toMatchObject({ minSnrDb: 70, passed: true });
    expect(strict.report.outputs![0]!.snrDb ?? Infinity).toBeGreaterThanOrEqual(70);
    expect(strict.metadata.sizes.converted).toBeGreaterThan(loose.metadata.sizes.converted);
    expect(strict.metadata.quantization.auto!.trials).toBeGreaterThan(1);
    expect(progress).toContain('auto: searching per-weight dtypes within tolerance 0.05 and SNR ≥ 70 dB');
    expect(progress.find((line) => line.startsWith('auto trial 1:'))).toMatch(/^auto trial 1: relative drift [\d.e-]+, worst SNR [\d.]+ dB \(target use [\d.e+]+; ≤ 1 meets it\)$/);
  });
});
