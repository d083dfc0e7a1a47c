package ui

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"time"
)

//go:embed static templates
var embedded embed.FS

// assets serves the embedded static files under /static/<hash>/<path>, where <hash> is the first 12 hex digits
// of the file's SHA-256. A URL names one exact content, so it may be cached for a year; a changed file gets a
// new URL and the pages, which are never cached, name it.
type assets struct {
	byURL  map[string]asset  // "/static/<hash>/<path>" -> file
	byPath map[string]string // "<path>" -> URL
}

type asset struct {
	body  []byte
	ctype string
}

func newAssets() (*assets, error) {
	a := &assets{byURL: map[string]asset{}, byPath: map[string]string{}}
	err := fs.WalkDir(embedded, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := embedded.ReadFile(p)
		if err != nil {
			return err
		}
		rel := strings.TrimPrefix(p, "static/")
		sum := sha256.Sum256(body)
		url := "/static/" + hex.EncodeToString(sum[:6]) + "/" + rel
		ctype := mime.TypeByExtension(path.Ext(rel))
		if ctype == "" {
			ctype = "text/plain; charset=utf-8"
		}
		a.byURL[url] = asset{body: body, ctype: ctype}
		a.byPath[rel] = url
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("embedded assets: %w", err)
	}
	return a, nil
}

// url is the versioned URL of an embedded file; templates call it as {{asset "app.css"}}. An unknown name is a
// programming error caught when the templates are first executed in tests.
func (a *assets) url(rel string) (string, error) {
	u, ok := a.byPath[rel]
	if !ok {
		return "", fmt.Errorf("no embedded asset %q", rel)
	}
	return u, nil
}

func (a *assets) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f, ok := a.byURL[r.URL.Path]
	if !ok {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte("no such asset (the page that named it is older than this box's software; reload it)\n"))
		return
	}
	w.Header().Set("Content-Type", f.ctype)
	w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(f.body))
}
