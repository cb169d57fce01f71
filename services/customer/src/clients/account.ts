// The account service, as the customer service uses it: block or unblock an owner's debits and
// close an owner's accounts. Its errors reach our caller as they are (code, reason, field
// violations), except those that are ours to fix (authentication, an unimplemented method).
import { fromDownstream, serviceClient, type DomainError } from '@corebank/kit';
import { AccountServiceClient } from '@corebank/kit/gen/corebank/v1/account';

/** What the customer service's own tokens carry when it calls the account service. */
export const ACCOUNT_SCOPES = ['accounts:admin'];

export type AccountClient = ReturnType<typeof serviceClient<AccountServiceClient>>;

export function accountClient(address: string, key: Uint8Array): AccountClient {
  return serviceClient(AccountServiceClient, address, key, 'customer', ACCOUNT_SCOPES);
}

/** Turns a failed account-service call into the DomainError our caller gets. */
export const fromAccountService = (err: unknown, rpc: string): DomainError => fromDownstream(err, 'account', rpc);
