import { createParser } from 'eventsource-parser';

/** One item of an event stream: an event, or a comment line (the server's heartbeat). */
export type SseItem =
  | { readonly type: 'event'; readonly event: string; readonly data: string; readonly id: string | undefined }
  | { readonly type: 'comment' };

/**
 * The client's one reader of Server-Sent Events (watches, election observe): the
 * items of a response body in order, as they arrive. Ending the iteration early
 * cancels the body.
 */
export async function* readSse(body: ReadableStream<Uint8Array>): AsyncGenerator<SseItem, void, undefined> {
  const items: SseItem[] = [];
  const parser = createParser({
    onEvent: (message) =>
      items.push({ type: 'event', event: message.event ?? 'message', data: message.data, id: message.id }),
    onComment: () => items.push({ type: 'comment' }),
  });
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      parser.feed(value);
      while (items.length > 0) yield items.shift() as SseItem;
    }
  } finally {
    reader.cancel().catch(() => undefined);
  }
}
