/** SAM-5 §5.3.1: status codes. */
export const ScsiStatus = {
  Good: 0x00,
  CheckCondition: 0x02,
  ConditionMet: 0x04,
  Busy: 0x08,
  ReservationConflict: 0x18,
  TaskSetFull: 0x28,
  AcaActive: 0x30,
  TaskAborted: 0x40,
} as const;
export type ScsiStatus = (typeof ScsiStatus)[keyof typeof ScsiStatus];

/** SAM-5 §8.6: task attributes. */
export const TaskAttribute = { Simple: 'simple', Ordered: 'ordered', HeadOfQueue: 'head-of-queue', Aca: 'aca' } as const;
export type TaskAttribute = (typeof TaskAttribute)[keyof typeof TaskAttribute];
