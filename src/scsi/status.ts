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

/** Metric label of a status. */
export function statusName(s: number): string {
  switch (s) {
    case ScsiStatus.Good:
      return 'good';
    case ScsiStatus.CheckCondition:
      return 'check-condition';
    case ScsiStatus.ConditionMet:
      return 'condition-met';
    case ScsiStatus.Busy:
      return 'busy';
    case ScsiStatus.ReservationConflict:
      return 'reservation-conflict';
    case ScsiStatus.TaskSetFull:
      return 'task-set-full';
    case ScsiStatus.TaskAborted:
      return 'task-aborted';
    default:
      return `0x${s.toString(16)}`;
  }
}
