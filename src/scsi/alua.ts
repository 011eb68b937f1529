/**
 * Asymmetric logical unit access (SPC-5 r20 §5.16), implicit only (TPGS = 01b): the target
 * changes the states itself; SET TARGET PORT GROUPS is not supported. In an s3tgt cluster
 * each node is one target port group with one target port (its portals share one TPGT), and
 * a LUN is active/optimized on the node that holds its lease, standby on the others.
 */
export type AccessState = 'active-optimized' | 'standby' | 'transitioning';

/** SPC-5 r20 §6.37 Table 273: ASYMMETRIC ACCESS STATE codes. */
export const ACCESS_STATE_CODE: Readonly<Record<AccessState, number>> = {
  'active-optimized': 0x0,
  standby: 0x2,
  transitioning: 0xf,
};

/** One node's target port group: its id is also the RELATIVE TARGET PORT IDENTIFIER of its port. */
export interface PortGroup {
  readonly id: number;
  readonly node: string;
}

/**
 * The ALUA view of one logical unit: every group and which node is active. Commands check
 * `local` before touching the medium; RTPG reports `stateOf` every group from any port.
 */
export class AluaStates {
  private activeNode: string | undefined;
  private moving = false;

  constructor(
    readonly groups: readonly PortGroup[],
    /** This node's group. */
    readonly local: PortGroup,
    /** The group of the LUN's preferred node (PREF bit in RTPG), if it has one. */
    readonly preferred: PortGroup | undefined,
  ) {}

  stateOf(g: PortGroup): AccessState {
    if (this.moving && (g === this.local || g.node === this.activeNode)) return 'transitioning';
    return g.node === this.activeNode ? 'active-optimized' : 'standby';
  }

  get localState(): AccessState {
    return this.stateOf(this.local);
  }

  /** The node that holds the LUN now (undefined: nobody, e.g. between a crash and its takeover). */
  get active(): string | undefined {
    return this.activeNode;
  }

  /**
   * Records who is active (and whether this node is in the middle of a transition). Returns
   * whether the local port's state changed: the caller raises ASYMMETRIC ACCESS STATE CHANGED.
   */
  set(activeNode: string | undefined, transitioning = false): boolean {
    const before = this.groups.map((g) => this.stateOf(g)).join();
    this.activeNode = activeNode;
    this.moving = transitioning;
    return this.groups.map((g) => this.stateOf(g)).join() !== before;
  }
}
