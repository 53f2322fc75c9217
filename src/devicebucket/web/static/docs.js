// Starts Swagger UI on /docs over this server's OpenAPI document (no inline script: CSP).
window.addEventListener("load", () => {
  window.ui = SwaggerUIBundle({ url: "/openapi.json", dom_id: "#swagger-ui" });
});
