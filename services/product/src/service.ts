// The product service: the global, versioned product catalog over gRPC, with its outbox relay.
import {
  bindService,
  createLogger,
  DomainError,
  encodePageToken,
  enumValue,
  fromTimestamp,
  type Logger,
  type Nats,
  type Principal,
  readPage,
  timestampField,
  uint32,
  type RunningServer,
  type ShardRouter,
  startRuntime,
  tokenVerifier,
  toTimestamp,
  Violations,
} from '@corebank/kit';
import {
  ProductKind,
  ProductServiceService,
  ProductStatus as P,
  type ValiditySpec,
} from '@corebank/kit/gen/corebank/v1/product';
import { globalRouter, type ProductConfig } from './config.js';
import { DOMAIN } from './events.js';
import {
  createProduct,
  createVersion,
  getVersion,
  listProducts,
  listVersions,
  moveVersion,
  productKind,
  updateVersion,
} from './store.js';
import {
  normalizeContent,
  PRODUCT_ID,
  validateContent,
  validateProductId,
  validateValidity,
  type Content,
} from './validate.js';
import { validUntil } from './validity.js';

export const SERVICE = 'product';
export const SERVICE_NAME = 'corebank.v1.ProductService';

/** Scopes a caller's token must hold, per RPC. */
export const SCOPES = {
  createProduct: 'products:write',
  getProduct: 'products:read',
  listProducts: 'products:read',
  listProductVersions: 'products:read',
  createProductVersion: 'products:write',
  updateProductVersion: 'products:write',
  publishProductVersion: 'products:write',
  retireProductVersion: 'products:write',
  computeValidUntil: 'products:read',
} as const;

/** The catalog is the bank's, not a customer's: a customer-bound token may read it, never change it. */
function requireUnbound(p: Principal): void {
  if (p.customerId !== undefined) {
    throw new DomainError('PERMISSION_DENIED', 'CUSTOMER_TOKEN', 'a token bound to a customer cannot change products');
  }
}

function target(productId: string, version: number | undefined, allowLatest = false): void {
  const v = new Violations();
  validateProductId(v, productId);
  // version is a uint32 on the wire and an integer column: 2^31 and above name no version.
  if (version !== undefined && uint32(v, 'version', version) && version === 0 && !allowLatest) {
    v.add('version', 'is required');
  }
  v.throwIfAny();
}

/** ListProducts pages by product id, within the kind asked for. */
const listQuery = (kind: ProductKind) => ({ rpc: 'ListProducts', filters: [kind] });
const parseAfter = ([id, ...rest]: string[]) => (!rest.length && id && PRODUCT_ID.test(id) ? id : undefined);

export interface ProductApp {
  server: RunningServer;
  router: ShardRouter;
  nats: Nats;
  log: Logger;
  shutdown: () => Promise<void>;
}

export async function startProductService(
  config: ProductConfig,
  log: Logger = createLogger(SERVICE, config.logLevel),
): Promise<ProductApp> {
  const verifier = await tokenVerifier(SERVICE, config, log);
  const router = globalRouter(config, config.dbPoolMax, SERVICE);
  const runtime = await startRuntime({ service: SERVICE, domain: DOMAIN, router, config, log });
  const { nats } = runtime;
  const db = router.shards[0]!.db;

  /** Validates a version's content for the product's kind; the normalised content to store. */
  const content = (kind: ProductKind, c: Content, v = new Violations()): Content => {
    validateContent(v, kind, c);
    v.throwIfAny();
    return normalizeContent(c);
  };

  const binding = bindService(
    SERVICE_NAME,
    ProductServiceService,
    {
      async createProduct(req, ctx) {
        requireUnbound(ctx.principal);
        const v = new Violations();
        validateProductId(v, req.productId);
        if (req.kind !== ProductKind.PRODUCT_KIND_DEPOSIT && req.kind !== ProductKind.PRODUCT_KIND_LOAN) {
          v.add('kind', 'must be PRODUCT_KIND_DEPOSIT or PRODUCT_KIND_LOAN');
        }
        const c = content(req.kind, req, v);
        const res = await createProduct(db, req.productId, req.kind, c);
        if (!res.replayed) ctx.log.info({ product_id: req.productId }, 'product created');
        return res;
      },

      async getProduct(req) {
        target(req.productId, req.version, true);
        return { product: await getVersion(db, req.productId, req.version) };
      },

      async listProducts(req) {
        const v = new Violations();
        enumValue(v, 'kind', req.kind, ProductKind, { allowUnspecified: true });
        const { size, after } = readPage(v, req.page, listQuery(req.kind), parseAfter);
        v.throwIfAny();
        const { products, last } = await listProducts(db, req.kind, size, after ?? '');
        return { products, page: { nextPageToken: last ? encodePageToken(listQuery(req.kind), [last]) : '' } };
      },

      async listProductVersions(req) {
        target(req.productId, undefined);
        return { versions: await listVersions(db, req.productId) };
      },

      async createProductVersion(req, ctx) {
        requireUnbound(ctx.principal);
        target(req.productId, undefined);
        return createVersion(db, req.productId);
      },

      async updateProductVersion(req, ctx) {
        requireUnbound(ctx.principal);
        target(req.productId, req.version);
        const kind = await productKind(db, req.productId);
        return updateVersion(db, req.productId, req.version, content(kind, req));
      },

      async publishProductVersion(req, ctx) {
        requireUnbound(ctx.principal);
        target(req.productId, req.version);
        return moveVersion(db, req.productId, req.version, P.PRODUCT_STATUS_PUBLISHED);
      },

      async retireProductVersion(req, ctx) {
        requireUnbound(ctx.principal);
        target(req.productId, req.version);
        return moveVersion(db, req.productId, req.version, P.PRODUCT_STATUS_RETIRED);
      },

      async computeValidUntil(req) {
        const v = new Violations();
        if (!req.purchasedAt) v.add('purchased_at', 'is required');
        else timestampField(v, 'purchased_at', req.purchasedAt);
        uint32(v, 'version', req.version);
        if (req.productId && req.validity) v.add('validity', 'set product_id or validity, not both');
        else if (req.productId) validateProductId(v, req.productId);
        else if (req.validity) validateValidity(v, req.validity);
        else v.add('validity', 'set product_id or validity');
        v.throwIfAny();
        let spec: ValiditySpec | undefined = req.validity;
        if (req.productId) {
          spec = (await getVersion(db, req.productId, req.version)).validity;
          if (!spec) {
            throw new DomainError(
              'FAILED_PRECONDITION',
              'PRODUCT_HAS_NO_VALIDITY',
              `product ${req.productId} has no validity spec`,
            );
          }
        }
        const normalized = normalizeContent({ name: '', description: '', validity: spec }).validity!;
        return {
          validUntil: toTimestamp(validUntil(normalized, fromTimestamp(req.purchasedAt!))),
          validity: normalized,
        };
      },
    },
    SCOPES,
    verifier,
    log,
  );

  const server = await runtime.serve([binding], []);
  return { server, router, nats, log, shutdown: server.shutdown };
}
