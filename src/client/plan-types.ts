import type {
  ActualState,
  Desired,
  DesiredSpec,
  DesiredValue,
  Group,
  GroupStatus,
  PlanPreview,
  PlanRecord,
} from '../plans/plan-model.js';

export type { ActualState, Desired, DesiredSpec, DesiredValue, Group, GroupStatus, PlanPreview, PlanRecord };
