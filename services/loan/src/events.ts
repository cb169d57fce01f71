// Loan events, written to the outbox in the transaction of the change they describe (stream CB_LOAN).
import { newEventId, subjectOf, toTimestamp, type OutboxEvent } from '@corebank/kit';
import { LoanApplicationChanged } from '@corebank/kit/gen/corebank/v1/events';
import { ApplicationState, type LoanApplication } from '@corebank/kit/gen/corebank/v1/loan';

export const DOMAIN = 'loan';

export const SUBJECTS = {
  applied: subjectOf(DOMAIN, 'application_applied'),
  approved: subjectOf(DOMAIN, 'application_approved'),
  referred: subjectOf(DOMAIN, 'application_referred'),
  rejected: subjectOf(DOMAIN, 'application_rejected'),
  disbursed: subjectOf(DOMAIN, 'loan_disbursed'),
  disbursementRefused: subjectOf(DOMAIN, 'loan_disbursement_refused'),
  paidOff: subjectOf(DOMAIN, 'loan_paid_off'),
  repaymentApplied: subjectOf(DOMAIN, 'repayment_applied'),
  repaymentRefused: subjectOf(DOMAIN, 'repayment_refused'),
  delinquencyChanged: subjectOf(DOMAIN, 'loan_delinquency_changed'),
  instalmentOverdue: subjectOf(DOMAIN, 'loan_instalment_overdue'),
  writtenOff: subjectOf(DOMAIN, 'loan_written_off'),
  recoveryReceived: subjectOf(DOMAIN, 'recovery_received'),
  rescheduled: subjectOf(DOMAIN, 'loan_rescheduled'),
  partnerRegistered: subjectOf(DOMAIN, 'partner_lender_registered'),
} as const;

const DECIDED: Partial<Record<ApplicationState, string>> = {
  [ApplicationState.APPLICATION_STATE_APPROVED]: SUBJECTS.approved,
  [ApplicationState.APPLICATION_STATE_REFERRED]: SUBJECTS.referred,
  [ApplicationState.APPLICATION_STATE_REJECTED]: SUBJECTS.rejected,
};

function applicationEvent(subject: string, application: LoanApplication, at: Date): OutboxEvent {
  const meta = { eventId: newEventId(), occurredAt: toTimestamp(at), shard: application.shard };
  return { id: meta.eventId, subject, payload: LoanApplicationChanged.encode({ meta, application }).finish() };
}

/** An application made: applied, then its decision (approved, referred or rejected). */
export const applied = (a: LoanApplication, at: Date): OutboxEvent[] => [
  applicationEvent(SUBJECTS.applied, a, at),
  applicationEvent(DECIDED[a.state]!, a, at),
];

/** A reviewer's decision. */
export const decided = (a: LoanApplication, at: Date): OutboxEvent => applicationEvent(DECIDED[a.state]!, a, at);
