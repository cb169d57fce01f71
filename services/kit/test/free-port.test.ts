// The test harness's free ports: many asked for before any is listened on are all different (the
// kernel may offer a port again once its probe closed; the bench once started two services on one).
import { describe, expect, it } from 'vitest';
import { freePort } from '../src/testing/infra.js';

describe('freePort', () => {
  it('never hands out one port twice in a process', async () => {
    const ports: number[] = [];
    for (let i = 0; i < 300; i++) ports.push(await freePort());
    expect(new Set(ports).size).toBe(ports.length);
  });
});
