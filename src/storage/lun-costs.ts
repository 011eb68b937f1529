import type { StoreOp } from './instrumented-store';

/** The request classes S3 bills (AWS's price list names them so; RGW's usage log too). */
export type S3Request = 'PUT' | 'GET' | 'HEAD' | 'LIST' | 'COPY' | 'DELETE';
export const S3_REQUESTS: readonly S3Request[] = ['PUT', 'GET', 'HEAD', 'LIST', 'COPY', 'DELETE'];

/** What each store operation is on the bill: one HTTP request each (DeleteObjects is one POST). */
const BILLED_AS: Readonly<Record<StoreOp, S3Request>> = {
  get: 'GET',
  head: 'HEAD',
  put: 'PUT',
  copy: 'COPY',
  delete: 'DELETE',
  deleteMany: 'DELETE',
  list: 'LIST',
};

/**
 * One LUN's traffic with its object store, counted where each attempt leaves for the wire
 * (InstrumentedStore, under the retries: a retried PUT is two requests, as on the bill and in
 * the server's log). Bytes are the bodies sent and received, encoded (compressed, sealed).
 */
export class LunCosts {
  /** When counting began (Date.now()): the request rate is over this span. */
  readonly since = Date.now();
  readonly requests: Record<S3Request, number> = { PUT: 0, GET: 0, HEAD: 0, LIST: 0, COPY: 0, DELETE: 0 };
  bytesIn = 0;
  bytesOut = 0;

  add(op: StoreOp, bytes: number): void {
    this.requests[BILLED_AS[op]]++;
    if (op === 'get') this.bytesIn += bytes;
    if (op === 'put') this.bytesOut += bytes;
  }
}

/** The price table (`s3.prices`): US dollars; the defaults are an example only (docs/data-at-rest.md). */
export interface PriceTable {
  readonly storageGbMonth: number;
  /** Per 1000 requests of each class. */
  readonly per1000: Readonly<Record<S3Request, number>>;
}

/**
 * An example: AWS S3 Standard, us-east-1, as published for 2025 (storage $0.023 per GB-month;
 * PUT, COPY, LIST $0.005 per 1000; GET, HEAD $0.0004 per 1000; DELETE free). Set your own.
 */
export const EXAMPLE_PRICES: PriceTable = {
  storageGbMonth: 0.023,
  per1000: { PUT: 0.005, COPY: 0.005, LIST: 0.005, GET: 0.0004, HEAD: 0.0004, DELETE: 0 },
};

const MONTH_SECONDS = 30 * 24 * 3600;

/**
 * A month of this LUN at its current size and request rate: storage from the bytes stored,
 * requests from the rate since counting began (`seconds` ago).
 */
export function monthlyCost(prices: PriceTable, storedBytes: number, costs: LunCosts, seconds: number): { storage: number; requests: number } {
  const storage = (storedBytes / 1e9) * prices.storageGbMonth;
  let spent = 0;
  for (const k of S3_REQUESTS) spent += (costs.requests[k] / 1000) * prices.per1000[k];
  return { storage, requests: seconds > 0 ? (spent * MONTH_SECONDS) / seconds : 0 };
}
