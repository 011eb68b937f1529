import type { Command } from './command';
import { REPORT_TARGET_PORT_GROUPS } from './commands/alua';
import { REPORT_LUNS, REQUEST_SENSE, SYNCHRONIZE_CACHE_10, SYNCHRONIZE_CACHE_16, TEST_UNIT_READY } from './commands/basic';
import { READ_CAPACITY_10, READ_CAPACITY_16 } from './commands/capacity';
import { COMPARE_AND_WRITE } from './commands/compare-and-write';
import { DEVICE_COMMANDS } from './commands/device';
import { EXTENDED_COPY_COMMANDS } from './commands/extended-copy';
import { INQUIRY } from './commands/inquiry';
import { MODE_COMMANDS } from './commands/mode';
import { ODX_COMMANDS } from './commands/odx';
import { ORWRITE, WRITE_ATOMIC_16 } from './commands/orwrite-atomic';
import { PERSISTENT_RESERVE_IN, PERSISTENT_RESERVE_OUT } from './commands/persistent-reserve';
import { GET_LBA_STATUS, UNMAP } from './commands/provisioning';
import { READ_WRITE_COMMANDS } from './commands/read-write';
import { REPORT_SUPPORTED_TMF, reportSupportedOpcodes } from './commands/report-supported';
import { RESERVE_RELEASE_COMMANDS } from './commands/reserve';
import { RECEIVE_ROD_TOKEN_INFORMATION } from './commands/token-operations';
import { PREFETCH_COMMANDS, VERIFY_COMMANDS } from './commands/verify';
import { WRITE_SAME_COMMANDS } from './commands/write-same';
import type { LogicalUnit } from './logical-unit';

/**
 * Every command the device server implements, in one table (tgt's sbc_template.ops, LIO's
 * sbc_parse_cdb): nothing registers itself by being imported.
 */
export const COMMANDS: readonly Command<LogicalUnit>[] = [
  TEST_UNIT_READY,
  REQUEST_SENSE,
  INQUIRY,
  REPORT_LUNS,
  ...MODE_COMMANDS,
  ...RESERVE_RELEASE_COMMANDS,
  PERSISTENT_RESERVE_IN,
  PERSISTENT_RESERVE_OUT,
  reportSupportedOpcodes(() => COMMANDS),
  REPORT_TARGET_PORT_GROUPS,
  REPORT_SUPPORTED_TMF,
  ...DEVICE_COMMANDS,
  READ_CAPACITY_10,
  READ_CAPACITY_16,
  ...READ_WRITE_COMMANDS,
  ...VERIFY_COMMANDS,
  ...PREFETCH_COMMANDS,
  COMPARE_AND_WRITE,
  ...EXTENDED_COPY_COMMANDS,
  ...ODX_COMMANDS,
  RECEIVE_ROD_TOKEN_INFORMATION,
  ORWRITE,
  WRITE_ATOMIC_16,
  ...WRITE_SAME_COMMANDS,
  UNMAP,
  GET_LBA_STATUS,
  SYNCHRONIZE_CACHE_10,
  SYNCHRONIZE_CACHE_16,
];

/** Opcodes whose service action is in byte 1 bits 4-0 (SPC-5 §4.2.5.2). */
const SERVICE_ACTION_OPCODES = new Set(COMMANDS.filter((c) => c.def.serviceAction !== undefined).map((c) => c.def.opcode));

const byKey = new Map<number, Command<LogicalUnit>>();
for (const c of COMMANDS) {
  const key = c.def.serviceAction === undefined ? c.def.opcode : (c.def.opcode << 8) | c.def.serviceAction;
  if (byKey.has(key)) throw new Error(`duplicate command ${c.def.name}`);
  byKey.set(key, c);
}

export function lookupCommand(cdb: Buffer): Command<LogicalUnit> | undefined {
  const op = cdb[0];
  if (SERVICE_ACTION_OPCODES.has(op)) return byKey.get((op << 8) | (cdb[1] & 0x1f));
  return byKey.get(op);
}

export function hasServiceActions(opcode: number): boolean {
  return SERVICE_ACTION_OPCODES.has(opcode);
}
