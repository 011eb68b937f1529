import type { ITNexus } from './nexus';
import { TaskAttribute } from './status';

/**
 * One task in a logical unit's task set (SAM-5 §8). It is created when the transport delivers
 * the command (in CmdSN order), may wait for data, runs once, and can be aborted at any point.
 */
export class Task {
  aborted = false;
  running = false;
  done = false;
  readonly finished: Promise<void>;
  private resolve!: () => void;
  private readonly abortHooks: Array<() => void> = [];

  constructor(
    readonly nexus: ITNexus,
    readonly tag: number,
    readonly attribute: TaskAttribute,
    /** Resolves when the tasks this one must wait for (SAM-5 §8.6 ordering) have ended. */
    readonly blocker: Promise<unknown> | undefined,
  ) {
    this.finished = new Promise((r) => {
      this.resolve = r;
    });
  }

  /** The transport's hook to stop moving data and drop the response of an aborted task. */
  onAbort(hook: () => void): void {
    if (this.aborted) hook();
    else this.abortHooks.push(hook);
  }

  /**
   * Aborts the task. One that has not started its handler ends at once (task management never
   * waits on queued work); one that is running ends when its handler returns, and its result
   * is dropped.
   */
  markAborted(): void {
    if (this.aborted || this.done) return;
    this.aborted = true;
    for (const h of this.abortHooks.splice(0)) h();
    if (!this.running) this.end();
  }

  end(): void {
    if (this.done) return;
    this.done = true;
    this.resolve();
  }
}

/**
 * The task set of one logical unit: ordering by task attribute (SAM-5 §8.6: ORDERED waits for
 * everything before it and blocks everything after; HEAD OF QUEUE runs at once; SIMPLE waits
 * only for the last ORDERED task) and lookup for task management.
 */
export class TaskSet {
  private readonly active = new Set<Task>();
  private lastOrdered: Task | undefined;

  add(nexus: ITNexus, tag: number, attribute: TaskAttribute): Task {
    let blocker: Promise<unknown> | undefined;
    if (attribute === TaskAttribute.Ordered) {
      blocker = this.active.size > 0 ? Promise.all([...this.active].map((t) => t.finished)) : undefined;
    } else if (attribute !== TaskAttribute.HeadOfQueue && this.lastOrdered && !this.lastOrdered.done) {
      blocker = this.lastOrdered.finished;
    }
    const task = new Task(nexus, tag, attribute, blocker);
    if (attribute === TaskAttribute.Ordered) this.lastOrdered = task;
    this.active.add(task);
    void task.finished.then(() => {
      this.active.delete(task);
      if (this.lastOrdered === task) this.lastOrdered = undefined;
    });
    return task;
  }

  find(nexusId: string, tag: number): Task | undefined {
    for (const t of this.active) if (t.nexus.id === nexusId && t.tag === tag && !t.done) return t;
    return undefined;
  }

  tasks(filter?: (t: Task) => boolean): Task[] {
    return [...this.active].filter((t) => !t.done && (!filter || filter(t)));
  }

  get size(): number {
    return this.active.size;
  }
}
