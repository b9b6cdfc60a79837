// The real nsfwjs MobileNetV2 fixture as an extra demo model, when ../shared/fixtures is
// beside the checkout (it is not on a user's clone: then there is nothing extra).
import path from 'node:path';
import { readInput } from '../converter/node.ts';
import { seededRandom } from '../shared/random.ts';
import type { DemoModel } from './demo-models.ts';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
export const MOBILENET_FIXTURE = path.resolve(root, '../shared/fixtures/tfjs-layers/nsfwjs-mobilenet_v2');

export async function optionalFixtures(): Promise<DemoModel[]> {
  const files = await readInput(MOBILENET_FIXTURE).catch(() => null);
  if (!files) return [];
  return [
    {
      name: 'nsfw-mobilenet',
      description: 'nsfwjs MobileNetV2 (224x224x3 → 5 classes), from ../shared/fixtures',
      files,
      quantize: 'uint8',
      classifier: { labels: ['Drawing', 'Hentai', 'Neutral', 'Porn', 'Sexy'], image: { height: 224, width: 224, channels: 'rgb', scale: 1 / 255, offset: 0 } },
      example: () => {
        const random = seededRandom(9);
        return Array.from({ length: 224 }, () => Array.from({ length: 224 }, () => [random(), random(), random()]));
      },
    },
  ];
}
