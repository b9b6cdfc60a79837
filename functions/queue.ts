// The Workers queue() side of uploads: each message (an R2 event notification, or the same
// shape sent by the upload route in local dev) goes through converter/consumer.ts, and its
// outcome decides the message's fate, one message at a time:
//   ignored / done → ack;  retry → retry with a delay (transient error, or another consumer
//   holds the upload's lease);  failed → recorded in the status, sent to the dead-letter
//   queue with the reason, ack. A handler that crashes leaves its message to Queues' own
//   retries, and after max_retries to the dead-letter queue configured in wrangler.toml.
import type { MessageBatch, Queue } from '@cloudflare/workers-types';
import { consumeUploadEvent, type ConsumeOutcome, type ConsumerOptions } from '../converter/consumer.ts';

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
        await options.deadLetter.send({
          ...(message.body as object),
          edgeflow: { uploadId: outcome.uploadId, reason: outcome.reason, attempts: message.attempts, failedAt: new Date().toISOString() },
        });
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
