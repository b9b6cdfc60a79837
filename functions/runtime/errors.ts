// Errors the routes turn into HTTP statuses: each carries its status and a message that
// names what is wrong (the field, the model, the version, the reason a load failed).
export class HttpError extends Error {
  constructor(readonly status: 400 | 401 | 403 | 404 | 409 | 413 | 503, message: string, readonly extra: Record<string, unknown> = {}) {
    super(message);
    this.name = 'HttpError';
  }
}

export const badRequest = (message: string) => new HttpError(400, message);
export const notFound = (message: string) => new HttpError(404, message);
export const tooLarge = (message: string) => new HttpError(413, message);
export const unavailable = (message: string) => new HttpError(503, message);
