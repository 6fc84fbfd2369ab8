/** Noah's watch message as a webhook body format ('noah'): Noah watches are webhooks with it. */
import { registerHookFormat } from '../hooks/formats.js';
import { noahCallbackBody } from './noah-callback.js';

registerHookFormat('noah', async (event, { backend }) => {
  const body = await noahCallbackBody(backend, event);
  return body === null ? null : { contentType: 'application/json', body };
});
