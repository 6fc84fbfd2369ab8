export { EtcdBackend } from './etcd-backend.js';
export type { EtcdBackendOptions } from './etcd-backend.js';
export { translateError } from './translate-error.js';
