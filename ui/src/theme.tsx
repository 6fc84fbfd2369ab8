import { useEffect, useState } from 'preact/hooks';

type Mode = 'auto' | 'light' | 'dark';
const NEXT: Record<Mode, Mode> = { auto: 'dark', dark: 'light', light: 'auto' };

/** Light, dark, or the system's choice; remembered (only this preference is kept in the browser). */
export function Theme() {
  const [mode, setMode] = useState<Mode>(() => (localStorage.getItem('muster-theme') as Mode | null) ?? 'auto');
  useEffect(() => {
    if (mode === 'auto') document.documentElement.removeAttribute('data-theme');
    else document.documentElement.setAttribute('data-theme', mode);
    localStorage.setItem('muster-theme', mode);
  }, [mode]);
  return (
    <button type="button" onClick={() => setMode(NEXT[mode])} title="Colour scheme: auto, dark or light">
      Theme: {mode}
    </button>
  );
}
