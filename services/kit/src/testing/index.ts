import { mintToken } from '../auth.js';

export * from './infra.js';
export * from '../grpc/client.js';

export const ALL_SCOPES = ['accounts:read', 'accounts:write', 'accounts:admin', 'transfers:write', 'ledger:admin'];

export async function testToken(key: Uint8Array, scopes = ALL_SCOPES, customerId?: string): Promise<string> {
  return mintToken(key, { channel: 'test', scopes, ...(customerId ? { customerId } : {}) });
}
