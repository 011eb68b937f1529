import { truncate } from '../cdb';
import type { Outcome } from '../command';
import { ScsiError } from '../errors';
import { DEFAULT_PRODUCT, DEFAULT_VENDOR, PRODUCT_REVISION } from '../identity';
import type { TargetPortInfo } from '../logical-unit';
import { ScsiStatus } from '../status';
import { decodeReportLuns, noSense, reportLuns } from './basic';
import { decodeInquiry, standardInquiry } from './inquiry';

/**
 * A command to a LUN that does not exist (SPC-5 §4.6.19/§6.7.2): INQUIRY answers with
 * peripheral qualifier 011b, REPORT LUNS and REQUEST SENSE work, everything else gets
 * LOGICAL UNIT NOT SUPPORTED.
 */
export function absentLunOutcome(cdb: Buffer, target: TargetPortInfo, lun: number | undefined): Outcome {
  void lun;
  switch (cdb[0]) {
    case 0x12: {
      const r = decodeInquiry(cdb);
      if (r.evpd) throw new ScsiError('LunNotSupported');
      const data = standardInquiry({ vendor: DEFAULT_VENDOR, product: DEFAULT_PRODUCT, revision: PRODUCT_REVISION }, false);
      return { status: ScsiStatus.Good, data: truncate(data, r.allocationLength) };
    }
    case 0xa0: {
      const r = decodeReportLuns(cdb);
      return { status: ScsiStatus.Good, data: reportLuns(target.lunNumbers(), r.select, r.allocationLength) };
    }
    case 0x03: {
      // SPC-5 §6.39: REQUEST SENSE to an absent LUN reports LOGICAL UNIT NOT SUPPORTED as data.
      const desc = (cdb[1] & 1) !== 0;
      const s = noSense(desc);
      if (desc) {
        s[1] = 0x05;
        s[2] = 0x25;
      } else {
        s[2] = 0x05;
        s[12] = 0x25;
      }
      return { status: ScsiStatus.Good, data: truncate(s, cdb[4]) };
    }
    default:
      throw new ScsiError('LunNotSupported');
  }
}
