// Loan events, written to the outbox in the transaction of the change they describe (stream CB_LOAN).
import { subjectOf } from '@corebank/kit';

export const DOMAIN = 'loan';

export const SUBJECTS = {} as const;

export { subjectOf };
