export * from './infra.js';
export * from './client.js';
