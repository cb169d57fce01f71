// Where a test file's services find PostgreSQL and NATS: the suite's shared servers (vitest's
// provided context) unless the file started its own (the faults test restarts them, which would
// disturb every other file running in parallel).
import { inject } from 'vitest';

export interface Infra {
  pgAdminUrl: string;
  pgUrl: string;
  natsUrl: string;
}

let own: Infra | undefined;

/** From now on, this file's harnesses create their databases and connect to NATS there. */
export function useInfra(infra: Infra | undefined): void {
  own = infra;
}

export function infra<K extends keyof Infra>(key: K): Infra[K] {
  return own?.[key] ?? inject(key);
}
