// The customer and product services, as the account service uses them to open a deposit account:
// the customer (its status and KYC), and the product version whose terms the account takes. Their
// NOT_FOUND names our request's field; their other verdicts pass through (kit fromDownstream).
import { DomainError, fromDownstream, serviceClient } from '@corebank/kit';
import { CustomerServiceClient, type Customer } from '@corebank/kit/gen/corebank/v1/customer';
import { ProductServiceClient, type ProductVersion } from '@corebank/kit/gen/corebank/v1/product';

export interface Peers {
  customers: ReturnType<typeof serviceClient<CustomerServiceClient>>;
  products: ReturnType<typeof serviceClient<ProductServiceClient>>;
}

/** Clients whose own tokens carry only the read scopes an opening needs. */
export function connectPeers(customerAddress: string, productAddress: string, key: Uint8Array): Peers {
  return {
    customers: serviceClient(CustomerServiceClient, customerAddress, key, 'account', ['customers:read']),
    products: serviceClient(ProductServiceClient, productAddress, key, 'account', ['products:read']),
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

export async function getCustomer(peers: Peers, customerId: string, deadline?: Date): Promise<Customer> {
  const { customer } = await call(
    'customer',
    'GetCustomer',
    'customer_id',
    peers.customers.getCustomer({ customerId }, deadline ? { deadline } : {}),
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
