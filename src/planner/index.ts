/**
 * The planner (SPEC §5): a pure function from the pool's state and one connected disk to what
 * that disk keeps, deletes and receives. `plan` is the entry point; `assertSafeDelete` is the
 * executor's check that a deletion came out of a plan.
 */
export { assertSafeDelete, isSafeDelete, plan } from './plan.js';
export type { HistogramRow, Plan, PlannerInput, PlanStep, SafeDelete } from './types.js';
export { UNCAPPED } from './types.js';
