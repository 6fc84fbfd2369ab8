import { plansOnRealAgents } from './plans-real-agents-suite.js';

plansOnRealAgents({ kind: 'sqlite' });
