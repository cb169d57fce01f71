// The customer and product services, as the account service uses them to open a deposit account:
// the customer (its status and KYC), and the product version whose terms the account takes. Their
// NOT_FOUND names our request's field; their other verdicts pass through (kit fromDownstream).
import { DomainError, fromDownstream, serviceClient, type Principal, type ServiceIdentity } from '@corebank/kit';
import { CustomerServiceClient, type Customer } from '@corebank/kit/gen/corebank/v1/customer';
import { ProductServiceClient, type ProductVersion } from '@corebank/kit/gen/corebank/v1/product';

export interface Peers {
  customers: ReturnType<typeof serviceClient<CustomerServiceClient>>;
  products: ReturnType<typeof serviceClient<ProductServiceClient>>;
}

/** Clients calling as the account service, with the scopes identities.ts gives it towards each. */
export function connectPeers(customerAddress: string, productAddress: string, identity: ServiceIdentity): Peers {
  return {
    customers: serviceClient(CustomerServiceClient, customerAddress, identity, 'customer'),
    products: serviceClient(ProductServiceClient, productAddress, identity, 'product'),
  };
}

async function call<T>(service: string, rpc: string, field: string, p: Promise<T>): Promise<T> {
  try {
    return await p;
  } catch (err) {
    const e = fromDownstream(err, service, rpc);
    if (e.code === 'NOT_FOUND') throw DomainError.notFound(field, service);
    throw e;
  }
}

/** The customer; with `onBehalfOf`, a customer-bound caller's binding goes along (checked there again). */
export async function getCustomer(
  peers: Peers,
  customerId: string,
  deadline?: Date,
  onBehalfOf?: Principal,
): Promise<Customer> {
  const { customer } = await call(
    'customer',
    'GetCustomer',
    'customer_id',
    peers.customers.getCustomer(
      { customerId },
      { ...(deadline ? { deadline } : {}), ...(onBehalfOf ? { onBehalfOf } : {}) },
    ),
  );
  return customer!;
}

/** The version asked for (0: the latest published). */
export async function getProduct(
  peers: Peers,
  productId: string,
  version: number,
  deadline?: Date,
): Promise<ProductVersion> {
  const { product } = await call(
    'product',
    'GetProduct',
    'product_id',
    peers.products.getProduct({ productId, version }, deadline ? { deadline } : {}),
  );
  return product!;
}
