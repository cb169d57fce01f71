import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBank, type TestBank } from './bank.js';
import { balances, fund, openAccounts, R, transfer } from './helpers.js';

describe('smoke', () => {
  let bank: TestBank;
  beforeAll(async () => {
    bank = await startBank(3);
  });
  afterAll(async () => bank?.stop());

  it('moves money', async () => {
    const [a, b] = await openAccounts(bank, 2, { owner: 'alice' });
    await fund(bank, a!, 1000n);
    const r = await bank.client.createTransfers({
      transfers: [transfer({ debitAccountId: a!.id, creditAccountId: b!.id, amount: 300n })],
    });
    expect(r.results[0]!.code).toBe(R.TRANSFER_RESULT_CODE_OK);
    expect((await balances(bank, a!.id)).creditsPosted - (await balances(bank, a!.id)).debitsPosted).toBe(700n);
    expect((await bank.client.checkLedgerInvariant({})).ok).toBe(true);
  });
});
