"""The web application: assembles every context's API router and pages, the shared templates
and the vendored static assets (htmx, Chart.js; no CDN: the machines are offline)."""
