// gRPC reflection serves the whole contract, well-known types and the health service included,
// so grpcurl can call every RPC without proto files (the README's way to call the bank).
import { createRequire } from 'node:module';
import * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBank, type TestBank } from './bank.js';

interface ReflectionResponse {
  listServicesResponse?: { service: { name: string }[] };
  fileDescriptorResponse?: { fileDescriptorProto: Buffer[] };
  errorResponse?: { errorMessage: string };
}

const require = createRequire(import.meta.url);
const descriptor = require('protobufjs/ext/descriptor') as {
  FileDescriptorProto: { decode(b: Uint8Array): { name: string; dependency: string[] } };
};

describe('reflection', () => {
  let bank: TestBank;
  beforeAll(async () => {
    bank = await startBank(1);
  });
  afterAll(async () => bank?.stop());

  it('resolves every service and all the files they depend on', async () => {
    const def = loadSync(require.resolve('@grpc/reflection/build/proto/grpc/reflection/v1/reflection.proto'));
    const pkg = grpc.loadPackageDefinition(def) as unknown as {
      grpc: { reflection: { v1: { ServerReflection: new (a: string, c: grpc.ChannelCredentials) => grpc.Client } } };
    };
    const client = new pkg.grpc.reflection.v1.ServerReflection(
      bank.address,
      grpc.credentials.createInsecure(),
    ) as grpc.Client & {
      serverReflectionInfo(): grpc.ClientDuplexStream<object, ReflectionResponse>;
    };
    const ask = (req: object) =>
      new Promise<ReflectionResponse>((resolve, reject) => {
        const call = client.serverReflectionInfo();
        call.once('data', (r: ReflectionResponse) => (resolve(r), call.end()));
        call.once('error', reject);
        call.write(req);
      });
    try {
      const services = (await ask({ listServices: '' })).listServicesResponse!.service.map((s) => s.name);
      expect(services).toEqual(expect.arrayContaining(['corebank.v1.AccountService', 'grpc.health.v1.Health']));

      // Follow the dependencies of the account service's file, as grpcurl does.
      const seen = new Set<string>();
      const pending = [await ask({ fileContainingSymbol: 'corebank.v1.AccountService' })];
      while (pending.length) {
        const r = pending.pop()!;
        expect(r.errorResponse, r.errorResponse?.errorMessage).toBeUndefined();
        for (const bytes of r.fileDescriptorResponse!.fileDescriptorProto) {
          const file = descriptor.FileDescriptorProto.decode(bytes);
          seen.add(file.name);
          for (const dep of file.dependency) if (!seen.has(dep)) pending.push(await ask({ fileByFilename: dep }));
        }
      }
      expect(seen).toContain('google/protobuf/timestamp.proto');
      expect(seen).toContain('corebank/v1/common.proto');
      const health = await ask({ fileContainingSymbol: 'grpc.health.v1.Health' });
      expect(health.errorResponse).toBeUndefined();
    } finally {
      client.close();
    }
  });
});
