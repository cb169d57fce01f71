// The customer service as the loan service uses it: the applicant's status, KYC and risk tier,
// asked on every application (a freeze or a tier change a second ago must count).
import { callDeadline, fromDownstream, serviceClient, type ServiceIdentity } from '@corebank/kit';
import { CustomerServiceClient, type Customer } from '@corebank/kit/gen/corebank/v1/customer';

export class Customers {
  constructor(
    private readonly client: ReturnType<typeof serviceClient<CustomerServiceClient>>,
    private readonly timeoutMs: number,
  ) {}

  static connect(address: string, identity: ServiceIdentity, timeoutMs: number): Customers {
    return new Customers(serviceClient(CustomerServiceClient, address, identity, 'customer'), timeoutMs);
  }

  close(): void {
    this.client.close();
  }

  async get(customerId: string, deadline?: Date): Promise<Customer> {
    try {
      const { customer } = await this.client.getCustomer(
        { customerId },
        { deadline: callDeadline(deadline, this.timeoutMs) },
      );
      return customer!;
    } catch (err) {
      throw fromDownstream(err, 'customer', 'GetCustomer');
    }
  }
}
