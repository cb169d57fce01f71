// The product service as the loan service uses it: loan product versions. A published version is
// immutable, so each (product, version) is cached for the life of the process; version 0 (the
// latest published) is asked every time, then cached under the number it resolved to.
import { callDeadline, fromDownstream, serviceClient, type ServiceIdentity } from '@corebank/kit';
import { ProductServiceClient, ProductStatus, type ProductVersion } from '@corebank/kit/gen/corebank/v1/product';

export class Products {
  private readonly cache = new Map<string, ProductVersion>();

  constructor(
    private readonly client: ReturnType<typeof serviceClient<ProductServiceClient>>,
    private readonly timeoutMs: number,
  ) {}

  static connect(address: string, identity: ServiceIdentity, timeoutMs: number): Products {
    return new Products(serviceClient(ProductServiceClient, address, identity, 'product'), timeoutMs);
  }

  close(): void {
    this.client.close();
  }

  /** A product version (0: the latest published); NOT_FOUND passes through naming product_id or product_version. */
  async get(productId: string, version: number, deadline?: Date): Promise<ProductVersion> {
    const key = `${productId}@${version}`;
    const hit = version ? this.cache.get(key) : undefined;
    if (hit) return hit;
    let product: ProductVersion | undefined;
    try {
      ({ product } = await this.client.getProduct(
        { productId, version },
        { deadline: callDeadline(deadline, this.timeoutMs) },
      ));
    } catch (err) {
      throw fromDownstream(err, 'product', 'GetProduct');
    }
    if (product && product.status !== ProductStatus.PRODUCT_STATUS_DRAFT) {
      this.cache.set(`${productId}@${product.version}`, product);
    }
    return product!;
  }
}
