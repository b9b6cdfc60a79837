// The --image spec and labels text parsers (shared/options/image-spec.ts) and their place in the
// conversion options schema.
import { describe, expect, it } from 'vitest';
import { parseImageSpec, parseLabels } from '../../shared/options/image-spec.ts';
import { ConversionOptions } from '../../shared/options/conversion.ts';

describe('parseImageSpec', () => {
  it('reads <H>x<W> with scale, offset and channels in any order', () => {
    expect(parseImageSpec('224x224')).toEqual({ height: 224, width: 224 });
    expect(parseImageSpec(' 28 x 32 , channels=grayscale,offset=-1, scale=0.0078125')).toEqual({ height: 28, width: 32, channels: 'grayscale', scale: 0.0078125, offset: -1 });
  });

  it('refuses a bad spec naming the part', () => {
    expect(() => parseImageSpec('224')).toThrow('bad --image "224": "224" is not <H>x<W>');
    expect(() => parseImageSpec('0x5')).toThrow('height and width must be 1..4096');
    expect(() => parseImageSpec('5x5,channels=rgba')).toThrow('channels must be rgb or grayscale, got "rgba"');
    expect(() => parseImageSpec('5x5,scale')).toThrow('"scale" is not key=value');
    expect(() => parseImageSpec('5x5,size=3')).toThrow('unknown key "size" (scale, offset, channels)');
  });
});

describe('parseLabels', () => {
  it('takes one name a line, ignoring blank lines; strips a Teachable Machine index only when every line has its own', () => {
    expect(parseLabels('cat\r\n\n dog \n')).toEqual(['cat', 'dog']);
    expect(parseLabels('0 Class 1\n1 Class 2\n')).toEqual(['Class 1', 'Class 2']);
    expect(parseLabels('0\n1\n2\n')).toEqual(['0', '1', '2']);
    expect(parseLabels('1 one\n2 two\n')).toEqual(['1 one', '2 two']);
    expect(parseLabels('cat, dog,bird', { commas: true })).toEqual(['cat', 'dog', 'bird']);
  });
});

describe('ConversionOptions', () => {
  it('takes labels and an image spec, and refuses empty labels', () => {
    expect(ConversionOptions.parse({ labels: ['a'], image: { height: 2, width: 3 } })).toEqual({ labels: ['a'], image: { height: 2, width: 3 } });
    expect(ConversionOptions.safeParse({ labels: ['a', ' '] }).success).toBe(false);
    expect(ConversionOptions.safeParse({ image: { height: 2, width: 3, channels: 'cmyk' } }).success).toBe(false);
  });
});
