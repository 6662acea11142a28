// The colour theme: localStorage "berth.theme" = light | dark | system, mirrored on
// <html data-theme>. app.css forces light/dark for those values and follows the OS otherwise.

export type Theme = "light" | "dark" | "system";
export const THEME_KEY = "berth.theme";

export function getTheme(): Theme {
  try {
    const t = localStorage.getItem(THEME_KEY);
    return t === "light" || t === "dark" ? t : "system";
  } catch {
    return "system";
  }
}

export function applyTheme(t: Theme = getTheme()): void {
  document.documentElement.dataset.theme = t;
}

export function setTheme(t: Theme): void {
  try {
    localStorage.setItem(THEME_KEY, t);
  } catch {
    // private mode: the choice lasts for this session
  }
  applyTheme(t);
}

/** Marks <html data-platform="linux"> on Linux (WebKitGTK), where app.css uses the generic
 * font families: see the note there. Call before the first render. */
export function applyPlatform(ua: string = navigator.userAgent): void {
  if (/\bLinux\b/.test(ua) && !/\bAndroid\b/.test(ua)) document.documentElement.dataset.platform = "linux";
}
