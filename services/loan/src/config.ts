import { baseSpec, loadConfig, loadShardUrls, parsers, serviceKeySpec, ShardMap, type Spec } from '@corebank/kit';
import { parseScorecard } from './scorecard.js';

/** Variables only the loan service reads (with the kit's baseSpec, the whole list). */
export const loanSpec = {
  ...serviceKeySpec,
  accountServiceAddress: {
    name: 'ACCOUNT_SERVICE_ADDRESS',
    description: "host:port of the account service (the ledger: the borrower's accounts, disbursements, repayments)",
    parse: parsers.address,
  },
  customerServiceAddress: {
    name: 'CUSTOMER_SERVICE_ADDRESS',
    description: "host:port of the customer service (the applicant's status, KYC and risk tier)",
    parse: parsers.address,
  },
  productServiceAddress: {
    name: 'PRODUCT_SERVICE_ADDRESS',
    description: 'host:port of the product service (the loan product versions)',
    parse: parsers.address,
  },
  globalDatabaseUrl: {
    name: 'GLOBAL_DATABASE_URL',
    description:
      "PostgreSQL URL of the global (unsharded) database: the bank's business date (schema day, read only), which loans are dated by",
    parse: parsers.url('postgres', 'postgresql'),
  },
  peerCallTimeoutMs: {
    name: 'PEER_CALL_TIMEOUT_MS',
    description: 'deadline of each call to the account, customer and product services',
    parse: parsers.int(100, 600_000),
    default: '5000',
  },
  disbursementSweepIntervalMs: {
    name: 'DISBURSEMENT_SWEEP_INTERVAL_MS',
    description:
      'how often the sweeper finishes disbursements and repayments a call left pending (a crash, the ledger unreachable); 0 disables it',
    parse: parsers.int(0, 3_600_000),
    default: '5000',
  },
  disbursementSweepAgeMs: {
    name: 'DISBURSEMENT_SWEEP_AGE_MS',
    description:
      'how long a disbursement or repayment must have been pending before the sweeper takes it over from its call',
    parse: parsers.int(0, 3_600_000),
    default: '10000',
  },
  scorecard: {
    name: 'LOAN_SCORECARD',
    description:
      'the application scorecard as JSON (riskTier, exposure, accountAgeDays, turnoverPercent, incomePercent, incomeNotDeclared, approveAt, referAt); empty: the default in src/scorecard.ts',
    parse: parseScorecard,
    default: '',
  },
} satisfies Spec;

export type LoanConfig = ReturnType<typeof loadLoanConfig>;

export function loadLoanConfig(env: NodeJS.ProcessEnv = process.env) {
  const c = loadConfig({ ...baseSpec, ...loanSpec }, env);
  return { ...c, shardUrls: loadShardUrls(c.shardCount, env), shards: ShardMap.parse(c.shardMap, c.shardCount) };
}
