export * from './infra.js';
export * from './auth.js';
export * from '../grpc/client.js';
export * from './tls.js';
export * from './queries.js';
