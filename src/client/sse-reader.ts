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
  // The DOM's and Node's stream types differ in their byte type parameters; the stream is the same.
  const decoder = new TextDecoderStream() as unknown as TransformStream<Uint8Array, string>;
  const reader = body.pipeThrough(decoder).getReader();
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
