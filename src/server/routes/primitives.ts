import type { FastifyPluginAsync } from 'fastify';
import type { PrimitiveRouteDeps } from './blocking.js';
import { barrierRoutes } from './barriers.js';
import { electionRoutes } from './elections.js';
import { lockRoutes } from './locks.js';
import { onceRoutes } from './once.js';
import { semaphoreRoutes } from './semaphores.js';
import { waitRoutes } from './wait.js';

/** Every coordination primitive's routes (issue 3). */
export const primitiveRoutes: FastifyPluginAsync<PrimitiveRouteDeps> = async (app, deps) => {
  await app.register(lockRoutes, deps);
  await app.register(semaphoreRoutes, deps);
  await app.register(electionRoutes, deps);
  await app.register(barrierRoutes, deps);
  await app.register(onceRoutes, deps);
  await app.register(waitRoutes, deps);
};
