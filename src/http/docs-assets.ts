// Swagger UI, served by ragd itself: the stock pages load from a CDN, which breaks
// air-gapped installs. `type: "file"` embeds each asset in the compiled binary.
// @ts-ignore -- a file import yields a path, not a module
import bundleJs from "swagger-ui-dist/swagger-ui-bundle.js" with { type: "file" };
// @ts-ignore
import css from "swagger-ui-dist/swagger-ui.css" with { type: "file" };
// @ts-ignore
import favicon from "swagger-ui-dist/favicon-32x32.png" with { type: "file" };

export const DOCS_ASSETS: Record<string, { path: string; type: string }> = {
  "swagger-ui-bundle.js": { path: bundleJs as unknown as string, type: "text/javascript; charset=utf-8" },
  "swagger-ui.css": { path: css as unknown as string, type: "text/css; charset=utf-8" },
  "favicon.png": { path: favicon as unknown as string, type: "image/png" },
};

export const DOCS_INIT_JS = `window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis],
  });
});
`;

export const DOCS_HTML = `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>ragd API</title>
  <link rel="icon" type="image/png" href="/docs/assets/favicon.png">
  <link rel="stylesheet" href="/docs/assets/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/assets/swagger-ui-bundle.js"></script>
  <script src="/docs/assets/init.js"></script>
</body>
</html>
`;
