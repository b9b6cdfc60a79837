// The nsfwjs MobileNetV2 layers fixture in ../shared/fixtures (absent on a user's clone), for
// tests that skip without it. Read it with converter/read/files.ts readInput.
import { promises as fs } from 'node:fs';
import { MOBILENET_FIXTURE } from '../../scripts/fixture-models.ts';

export { MOBILENET_FIXTURE as MOBILENET_DIR };

export async function fixturePresent(dir = MOBILENET_FIXTURE): Promise<boolean> {
  return fs.stat(dir).then(
    () => true,
    () => false,
  );
}
