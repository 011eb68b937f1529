import type { ReservationClass } from '../command';
import type { LogicalUnit } from '../logical-unit';
import type { ITNexus } from '../nexus';

/** Reservations of a logical unit (SPC-2 RESERVE/RELEASE, SPC-5 persistent reservations). */
export class Reservations {
  constructor(readonly lu: LogicalUnit) {}
  /** Throws RESERVATION CONFLICT when `nexus` may not run a command of class `cls`. */
  check(_nexus: ITNexus, _cls: ReservationClass): void {}
  nexusLost(_nexus: ITNexus): void {}
  reset(): void {}
  async load(): Promise<void> {}
}
