package console

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"net/http"
	"path"
	"strings"
)

// The web page: plain HTML, CSS and JS in static/, embedded in the
// binary. No build step, nothing fetched from elsewhere.

//go:embed static
var staticFS embed.FS

// page is index.html as a template. (Its files once carried the token
// in their URLs; the token now travels in a cookie: see authorize.)
var page = template.Must(template.ParseFS(staticFS, "static/index.html"))

var contentTypes = map[string]string{
	".js":  "text/javascript; charset=utf-8",
	".css": "text/css; charset=utf-8",
	".svg": "image/svg+xml",
}

// static serves the page and its files; anything else is a JSON 404.
func (c *Console) static(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	if p == "/" || p == "/index.html" {
		if !allowGet(w, r) {
			return
		}
		var buf bytes.Buffer
		if err := page.Execute(&buf, struct{ Query string }{""}); err != nil {
			writeError(w, http.StatusInternalServerError, "cannot render the page: "+err.Error())
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-cache")
		w.Write(buf.Bytes())
		return
	}
	name := strings.TrimPrefix(path.Clean(p), "/")
	if ct, ok := contentTypes[path.Ext(name)]; ok && !strings.Contains(name, "/") && name != "" {
		if b, err := staticFS.ReadFile("static/" + name); err == nil {
			if !allowGet(w, r) {
				return
			}
			w.Header().Set("Content-Type", ct)
			w.Header().Set("Cache-Control", "no-cache")
			w.Write(b)
			return
		}
	}
	writeError(w, http.StatusNotFound, fmt.Sprintf("no such path: %s (the API is under /api/, the gateway under /rpc/)", p))
}
