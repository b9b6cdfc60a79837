// The server's name and version as reported by /v2 server metadata.
export const SERVER_NAME = 'edgeflow';
export const SERVER_VERSION = '0.1.0';
