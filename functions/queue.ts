// The Workers queue() side of uploads: each message (an R2 event notification, or the same
// shape sent by the upload route in local dev) goes through converter/consumer.ts, and its
// outcome decides the message's fate, one message at a time:
//   ignored / done → ack;  retry → retry with a delay (transient error, or another consumer
//   holds the upload's lease);  failed → recorded in the status, sent to the dead-letter
//   queue with the reason once per upload (a redelivery, or a second event for the same
//   upload, sends nothing more), ack. A handler that crashes leaves its message to Queues' own
//   retries, and after max_retries to the dead-letter queue configured in wrangler.toml.
import type { Message, MessageBatch, Queue } from '@cloudflare/workers-types';
import { consumeUploadEvent, type ConsumeOutcome, type ConsumerOptions } from '../converter/consumer.ts';
import { uploadKeys } from '../shared/bucket/uploads.ts';
import { PreconditionFailedError } from '../shared/store/types.ts';

export interface UploadQueueOptions extends Omit<ConsumerOptions, 'attempt'> {
  /** The dead-letter queue binding; permanent failures are sent there. */
  deadLetter?: Queue;
}

export async function handleUploadBatch(batch: MessageBatch<unknown>, options: UploadQueueOptions): Promise<ConsumeOutcome[]> {
  const outcomes: ConsumeOutcome[] = [];
  for (const message of batch.messages) {
    let outcome: ConsumeOutcome;
    try {
      outcome = await consumeUploadEvent(message.body, { ...options, attempt: message.attempts });
    } catch (error) {
      outcome = { kind: 'retry', uploadId: '?', reason: (error as Error).message, delaySeconds: 10 };
    }
    outcomes.push(outcome);
    if (outcome.kind === 'retry') {
      message.retry({ delaySeconds: outcome.delaySeconds });
    } else if (outcome.kind === 'failed' && options.deadLetter) {
      try {
        await deadLetterOnce(message, outcome, options, options.deadLetter);
        message.ack();
      } catch (error) {
        options.log?.(`dead-letter send failed (${(error as Error).message}); the message is retried`);
        message.retry({ delaySeconds: 30 });
      }
    } else {
      message.ack();
    }
  }
  return outcomes;
}

/**
 * Sends a failed upload's message to the dead-letter queue once per upload id: a create-if-absent
 * marker (status/uploads/<id>.dead-letter, holding the letter) is written first, so a
 * redelivery or a second event of the same upload finds it and sends nothing; a send that
 * fails removes the marker again, so the retried message sends. A crash between the two leaves
 * the marker without a letter: the failure is still in the upload's status.
 */
async function deadLetterOnce(message: Message<unknown>, outcome: Extract<ConsumeOutcome, { kind: 'failed' }>, options: UploadQueueOptions, queue: Queue): Promise<void> {
  const letter = {
    ...(message.body as object),
    edgeflow: { uploadId: outcome.uploadId, reason: outcome.reason, attempts: message.attempts, failedAt: new Date().toISOString() },
  };
  const marker = outcome.uploadId ? uploadKeys.deadLetter(outcome.uploadId) : null;
  if (marker) {
    try {
      await options.store.put(marker, JSON.stringify(letter), { ifNoneMatch: '*', contentType: 'application/json' });
    } catch (error) {
      if (!(error instanceof PreconditionFailedError)) throw error;
      options.log?.(`${outcome.uploadId}: already sent to the dead-letter queue`);
      return;
    }
  }
  try {
    await queue.send(letter);
  } catch (error) {
    if (marker) await options.store.delete(marker).catch(() => undefined);
    throw error;
  }
}
