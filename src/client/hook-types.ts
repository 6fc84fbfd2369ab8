import type { HookDelivery, HookRequest, HookView } from '../hooks/hook-model.js';

export type { HookDelivery, HookRequest, HookView };
