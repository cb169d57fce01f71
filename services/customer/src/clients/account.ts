// The account service, as the customer service uses it: block or unblock an owner's debits and
// close an owner's accounts. Its errors reach our caller as they are (code, reason, field
// violations), except those that are ours to fix (authentication, an unimplemented method).
import { fromDownstream, serviceClient, type DomainError, type ServiceIdentity } from '@corebank/kit';
import { AccountServiceClient } from '@corebank/kit/gen/corebank/v1/account';

export type AccountClient = ReturnType<typeof serviceClient<AccountServiceClient>>;

/** Its tokens carry what services/kit/src/identities.ts allows the customer service (accounts:admin). */
export function accountClient(address: string, identity: ServiceIdentity): AccountClient {
  return serviceClient(AccountServiceClient, address, identity, 'account');
}

/** Turns a failed account-service call into the DomainError our caller gets. */
export const fromAccountService = (err: unknown, rpc: string): DomainError => fromDownstream(err, 'account', rpc);
