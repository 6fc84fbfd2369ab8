import type { ComponentChildren } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';

/**
 * A list that stays fast with tens of thousands of rows: only the rows in view
 * (and a few around them) are in the page, at fixed height, inside a scrolling box.
 * Keyboard: the box takes focus; arrows, Page Up/Down, Home and End move the
 * selection, Enter opens it.
 */
export function VirtualList<T>({
  items,
  rowHeight,
  height,
  header,
  row,
  label,
  onOpen,
}: {
  items: readonly T[];
  rowHeight: number;
  /** The box's height in px (the page around it stays still). */
  height: number;
  header?: ComponentChildren;
  row: (item: T, index: number, selected: boolean) => ComponentChildren;
  label: string;
  onOpen?: (item: T, index: number) => void;
}) {
  const box = useRef<HTMLDivElement>(null);
  const [scrollTop, setScrollTop] = useState(0);
  const [selected, setSelected] = useState(-1);
  const overscan = 10;
  const first = Math.max(0, Math.floor(scrollTop / rowHeight) - overscan);
  const visible = Math.ceil(height / rowHeight) + 2 * overscan;
  const last = Math.min(items.length, first + visible);

  useEffect(() => {
    if (selected >= items.length) setSelected(items.length - 1);
  }, [items.length, selected]);

  const select = (index: number) => {
    const next = Math.max(0, Math.min(items.length - 1, index));
    setSelected(next);
    const el = box.current;
    if (!el) return;
    const top = next * rowHeight;
    if (top < el.scrollTop) el.scrollTop = top;
    else if (top + rowHeight > el.scrollTop + el.clientHeight) el.scrollTop = top + rowHeight - el.clientHeight;
  };
  const onKey = (event: KeyboardEvent) => {
    const page = Math.max(1, Math.floor(height / rowHeight) - 1);
    const moves: Record<string, number> = {
      ArrowDown: selected + 1,
      ArrowUp: selected - 1,
      PageDown: selected + page,
      PageUp: selected - page,
      Home: 0,
      End: items.length - 1,
    };
    const target = moves[event.key];
    if (target !== undefined) {
      event.preventDefault();
      select(target);
    } else if (event.key === 'Enter' && selected >= 0 && onOpen) {
      const item = items[selected];
      if (item !== undefined) onOpen(item, selected);
    }
  };

  const rows: ComponentChildren[] = [];
  for (let i = first; i < last; i++) {
    const item = items[i] as T;
    rows.push(
      <div
        class={`vrow${i === selected ? ' selected' : ''}`}
        role="row"
        aria-rowindex={i + 2}
        aria-selected={i === selected}
        style={{ top: `${i * rowHeight}px`, height: `${rowHeight}px` }}
        key={i}
        onClick={() => {
          setSelected(i);
          onOpen?.(item, i);
        }}
      >
        {row(item, i, i === selected)}
      </div>,
    );
  }
  return (
    <div class="vlist" role="grid" aria-label={label} aria-rowcount={items.length + 1}>
      {header && (
        <div class="vrow vhead" role="row" aria-rowindex={1}>
          {header}
        </div>
      )}
      <div
        class="vbox"
        ref={box}
        tabIndex={0}
        style={{ height: `${height}px` }}
        onScroll={(e) => setScrollTop((e.currentTarget as HTMLDivElement).scrollTop)}
        onKeyDown={onKey}
      >
        <div class="vspace" style={{ height: `${items.length * rowHeight}px` }}>
          {rows}
        </div>
      </div>
    </div>
  );
}
