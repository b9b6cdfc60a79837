// Malformed URLs answer 400 naming the problem, never a 404 or a 500 with a stack in the log:
// bad percent-escapes in every route family (v1, v2, admin).
import { describe, expect, it, vi } from 'vitest';
import { createNodeApp } from '../../functions/node.ts';
import { MemoryStore } from '../../shared/store/memory.ts';

const { app } = createNodeApp({ store: new MemoryStore(), admin: { token: 'token-for-the-test-0123456789', bucket: 'mem', notify: async () => undefined } });

describe('malformed URLs', () => {
  const badEscapes = [
    '/v1/models/%E0%A4%A',
    '/v1/models/%E0%A4%A/metadata',
    '/v1/models/ok/labels/%ZZ',
    '/v1/models/%C0:predict',
    '/v2/models/%E0%A4%A',
    '/v2/models/%FF/ready',
    '/v2/models/ok/versions/%E0%A4%A/infer',
    '/admin/models/%E0%A4%A',
  ];
  for (const path of badEscapes) {
    it(`${path} → 400 naming the malformed percent-encoding, nothing logged as a failure`, async () => {
      const logged = vi.spyOn(console, 'error').mockImplementation(() => undefined);
      try {
        const method = path.includes(':predict') ? 'POST' : 'GET';
        const response = await app.request(path, {
          method,
          headers: { authorization: 'Bearer token-for-the-test-0123456789', 'content-type': 'application/json' },
          ...(method === 'POST' ? { body: '{"instances":[1]}' } : {}),
        });
        expect(response.status).toBe(400);
        const body = (await response.json()) as { error: string };
        expect(body.error).toMatch(/malformed percent-encoding/);
        expect(body.error).toContain(path.split('/').at(-1)!.split(':')[0]);
        expect(body.error).not.toMatch(/URIError|at .*\.ts/);
        expect(logged).not.toHaveBeenCalled();
      } finally {
        logged.mockRestore();
      }
    });
  }
});
