/** A URL as it may be shown to clients and logs: any user name and password in it replaced. */
export function withoutCredentials(url: string): string {
  try {
    const u = new URL(url);
    if (!u.username && !u.password) return url;
    u.username = "***";
    u.password = "";
    return u.toString().replace(/\/$/, url.endsWith("/") ? "/" : "");
  } catch {
    // not a URL: nothing in it can be told apart as a credential
    return url.replace(/\/\/[^/@]*@/, "//***@");
  }
}
