// The --image spec of a conversion, `<H>x<W>[,scale=<s>][,offset=<o>][,channels=rgb|grayscale]`
// (CLI flag, admin `image` field), and the class labels text (`--labels` file, TM labels.txt,
// admin `labels` field): the one parser of each.
import * as z from 'zod';
import { EdgeflowError } from '../errors.ts';

/** Largest image side a spec may ask for. */
export const MAX_IMAGE_SIDE = 4096;

/** An image spec as asked: channels, scale and offset may be left to the conversion (model input, defaults). */
export const ImageOption = z.object({
  height: z.number().int().positive().max(MAX_IMAGE_SIDE),
  width: z.number().int().positive().max(MAX_IMAGE_SIDE),
  channels: z.enum(['rgb', 'grayscale']).optional(),
  scale: z.number().finite().optional(),
  offset: z.number().finite().optional(),
});
export type ImageOption = z.infer<typeof ImageOption>;

const bad = (text: string, why: string, flag: string) =>
  new EdgeflowError('bad_request', `bad ${flag} ${JSON.stringify(text)}: ${why} (use <H>x<W>[,scale=<s>][,offset=<o>][,channels=rgb|grayscale], e.g. 224x224,scale=0.00392156862745098)`);

/** `224x224,scale=0.0078125,offset=-1,channels=rgb` → ImageOption; bad_request naming the part otherwise. */
export function parseImageSpec(text: string, flag = '--image'): ImageOption {
  const [size, ...parts] = text.split(',').map((part) => part.trim());
  const match = /^(\d+)\s*x\s*(\d+)$/i.exec(size ?? '');
  if (!match) throw bad(text, `${JSON.stringify(size)} is not <H>x<W>`, flag);
  const option: ImageOption = { height: Number(match[1]), width: Number(match[2]) };
  for (const part of parts) {
    const [key, value, extra] = part.split('=').map((s) => s.trim());
    if (value === undefined || value === '' || extra !== undefined) throw bad(text, `${JSON.stringify(part)} is not key=value`, flag);
    if (key === 'channels') {
      if (value !== 'rgb' && value !== 'grayscale') throw bad(text, `channels must be rgb or grayscale, got ${JSON.stringify(value)}`, flag);
      option.channels = value;
    } else if (key === 'scale' || key === 'offset') {
      const number = Number(value);
      if (!Number.isFinite(number)) throw bad(text, `${key} must be a number, got ${JSON.stringify(value)}`, flag);
      option[key] = number;
    } else throw bad(text, `unknown key ${JSON.stringify(key)} (scale, offset, channels)`, flag);
  }
  const checked = ImageOption.safeParse(option);
  if (!checked.success) throw bad(text, `height and width must be 1..${MAX_IMAGE_SIDE}`, flag);
  return checked.data;
}

/**
 * Class names, one per line (blank lines ignored; with `commas`, a single line may list them
 * comma-separated). Teachable Machine's `0 Class 1` lines lose their index when every line starts
 * with its own 0-based position.
 */
export function parseLabels(text: string, options: { commas?: boolean } = {}): string[] {
  let lines = text
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== '');
  if (options.commas && lines.length === 1)
    lines = lines[0]!
      .split(',')
      .map((name) => name.trim())
      .filter((name) => name !== '');
  const indexed = lines.length > 0 && lines.every((line, i) => new RegExp(`^${i}\\s+\\S`).test(line));
  return indexed ? lines.map((line) => line.replace(/^\d+\s+/, '')) : lines;
}
