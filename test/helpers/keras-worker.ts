// Test worker: POST a model file's bytes to /read?name=<file name>; answers the summary of
// converter/read readModel's result, or {error, errorName} with status 422.
import { readModel } from '../../converter/read/index.ts';
import { summarizeModel } from './model-summary.ts';

export default {
  async fetch(request: Request): Promise<Response> {
    const name = new URL(request.url).searchParams.get('name') ?? 'model';
    const bytes = new Uint8Array(await request.arrayBuffer());
    try {
      const model = await readModel(new Map([[name, bytes]]));
      return Response.json(summarizeModel(model));
    } catch (error) {
      const e = error as Error;
      return Response.json({ error: e.message, errorName: e.name }, { status: 422 });
    }
  },
};
