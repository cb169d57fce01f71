// Whether the ports `npm run up` would listen on are free, asked before anything starts: a port
// in use is one line naming it and the variable that moves it, not a grpc-js stack trace after
// the databases were migrated.
import { createServer } from 'node:net';

/** Resolves true when nothing else may bind host:port (in use, or not ours to take). */
export function portInUse(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(true));
    s.listen({ port, host, exclusive: true }, () => s.close(() => resolve(false)));
  });
}

/** The first of the named ports that is in use, if any. */
export async function firstInUse<K extends string>(ports: Record<K, number>): Promise<[K, number] | undefined> {
  for (const [name, port] of Object.entries(ports) as [K, number][]) {
    if (await portInUse(port)) return [name, port];
  }
  return undefined;
}
