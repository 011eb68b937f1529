import type { SenseReason } from './sense';

/**
 * Unit attention conditions per I_T nexus (SPC-5 §5.14). Each nexus has its own queue; the
 * first command from a nexus this logical unit has not seen before reports POWER ON, RESET,
 * OR BUS DEVICE RESET OCCURRED (29/00), which initiators expect after a fresh login.
 */
export class UnitAttentions {
  private readonly queues = new Map<string, SenseReason[]>();

  /** Registers a nexus on first sight; returns true if it was new. */
  see(nexusId: string): boolean {
    if (this.queues.has(nexusId)) return false;
    this.queues.set(nexusId, ['PowerOnResetOccurred']);
    return true;
  }

  /** Establishes a condition for every known nexus except `except` (the one that caused it). */
  establish(reason: SenseReason, except?: string): void {
    for (const [id, q] of this.queues) {
      if (id !== except) push(q, reason);
    }
  }

  establishFor(nexusId: string, reason: SenseReason): void {
    const q = this.queues.get(nexusId);
    if (q) push(q, reason);
    else this.queues.set(nexusId, [reason]);
  }

  /** Reports (and clears) the oldest pending condition of a nexus. */
  take(nexusId: string): SenseReason | undefined {
    return this.queues.get(nexusId)?.shift();
  }

  pending(nexusId: string): boolean {
    return (this.queues.get(nexusId)?.length ?? 0) > 0;
  }
}

function push(q: SenseReason[], reason: SenseReason): void {
  // A reset supersedes everything queued before it (SPC-5 §5.14: one condition may replace others).
  if (reason === 'PowerOnResetOccurred' || reason === 'BusDeviceResetOccurred') q.length = 0;
  if (!q.includes(reason)) q.push(reason);
}
